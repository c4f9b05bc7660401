// Time charts as inline SVG: the mean of each history bucket as a line, its min..max
// as a band, an optional threshold. Gaps in the data stay gaps.

import { number, s, time, timeSeconds } from "./dom.js";

const WIDTH = 600;
const HEIGHT = 170;
const LEFT = 56;
const RIGHT = 10;
const TOP = 10;
const BOTTOM = 24;

/** Runs of points with no hole longer than `maxGap` ms between them. */
function runs(points, maxGap) {
  const out = [];
  let current = [];
  for (const point of points) {
    if (current.length && point.t - current[current.length - 1].t > maxGap) {
      out.push(current);
      current = [];
    }
    current.push(point);
  }
  if (current.length) out.push(current);
  return out;
}

/** A tick spacing of 1, 2 or 5 times a power of ten, about `range / count`. */
function tickStep(range, count) {
  const rough = range / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const scaled = rough / power;
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
}

/** The axis: [low, high] widened to round ticks, and the ticks. */
function axis(low, high, fixed) {
  if (fixed) return { low: fixed[0], high: fixed[1], ticks: [fixed[0], (fixed[0] + fixed[1]) / 2, fixed[1]] };
  if (low === high) {
    const pad = Math.max(1, Math.abs(low) * 0.05);
    // Figures that cannot go below zero (power, ppm, people) keep zero as their floor.
    [low, high] = [low >= 0 ? Math.max(0, low - pad) : low - pad, high + pad];
  }
  const step = tickStep(high - low, 3);
  const first = Math.floor(low / step) * step;
  const last = Math.ceil(high / step) * step;
  const ticks = [];
  for (let value = first; value <= last + step / 2; value += step) ticks.push(Number(value.toPrecision(12)));
  return { low: first, high: last, ticks };
}

/**
 * An SVG chart of `points` ({t: ms, mean, min, max}) between `start` and `end` (ms).
 * Options: unit, digits, threshold ({value, label}), domain ([low, high] fixed),
 * format (value -> text), step (ms, the bucket width).
 */
export function timeChart(points, { start, end, step, unit = "", digits = 0, threshold, domain, format, label }) {
  const show = format || ((value) => `${number(value, digits)}${unit ? ` ${unit}` : ""}`);
  // Axis labels without the unit (the caption has it).
  const tick = format || ((value) => number(value, Number.isInteger(value) ? 0 : digits || 1));
  const lows = points.map((p) => p.min);
  const highs = points.map((p) => p.max);
  if (threshold) {
    lows.push(threshold.value);
    highs.push(threshold.value);
  }
  const { low, high, ticks } = axis(Math.min(...lows), Math.max(...highs), domain);
  const span = Math.max(1, end - start);
  const x = (t) => LEFT + ((t - start) / span) * (WIDTH - LEFT - RIGHT);
  const y = (v) => TOP + (1 - (v - low) / (high - low)) * (HEIGHT - TOP - BOTTOM);
  const clampX = (t) => Math.min(WIDTH - RIGHT, Math.max(LEFT, x(t)));

  const latest = points[points.length - 1];
  const summary =
    `${label}: ${points.length} points from ${time(start)} to ${time(end)}; ` +
    `lowest ${show(Math.min(...points.map((p) => p.min)))}, highest ${show(Math.max(...points.map((p) => p.max)))}, ` +
    `latest ${show(latest.mean)}`;
  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": summary,
    "data-points": points.length,
  });
  svg.append(s("title", {}, summary));

  // Axes and labels: round values; four times.
  for (const value of ticks) {
    svg.append(s("line", { class: "axis", x1: LEFT, x2: WIDTH - RIGHT, y1: y(value), y2: y(value) }));
    svg.append(s("text", { x: LEFT - 4, y: y(value) + 4, "text-anchor": "end" }, tick(value)));
  }
  for (let i = 0; i <= 3; i += 1) {
    const t = start + (span * i) / 3;
    const anchor = i === 0 ? "start" : i === 3 ? "end" : "middle";
    const label = span < 2 * 3_600_000 ? timeSeconds(t) : time(t);
    svg.append(s("text", { x: x(t), y: HEIGHT - 6, "text-anchor": anchor }, label));
  }

  // A hole longer than this is shown as one (a device silent for a while); shorter
  // ones are buckets that a slow sensor (one report every few minutes) left empty.
  const gap = Math.max(step * 2.5, 15 * 60_000);
  for (const run of runs(points, gap)) {
    const band = [
      ...run.map((p) => `${clampX(p.t)},${y(p.max)}`),
      ...run
        .slice()
        .reverse()
        .map((p) => `${clampX(p.t)},${y(p.min)}`),
    ];
    if (run.length > 1) svg.append(s("polygon", { class: "band", points: band.join(" ") }));
    const line = run.map((p) => `${clampX(p.t)},${y(p.mean)}`);
    if (run.length === 1) {
      svg.append(s("circle", { class: "mean", cx: clampX(run[0].t), cy: y(run[0].mean), r: 2.5 }));
    } else {
      svg.append(s("polyline", { class: "mean", points: line.join(" ") }));
    }
  }

  if (threshold) {
    const ty = y(threshold.value);
    svg.append(s("line", { class: "threshold", x1: LEFT, x2: WIDTH - RIGHT, y1: ty, y2: ty }));
    svg.append(s("text", { class: "threshold-label", x: WIDTH - RIGHT - 2, y: ty - 4, "text-anchor": "end" }, threshold.label));
  }
  return svg;
}
