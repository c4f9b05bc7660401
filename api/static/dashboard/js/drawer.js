// The room drawer: live facts, why the room is (not) occupied, light control, the
// last 24 hours as charts, today's bookings and the room's recent events.

import { api } from "./api.js";
import { timeChart } from "./charts.js";
import { CO2_LIMIT_PPM, bookingText, co2High } from "./floor.js";
import { ago, h, kwh, number, replace, startOfToday, time, when } from "./dom.js";

const DAY_MS = 86_400_000;
// Buckets per chart: enough for a smooth line on a tablet, few enough to stay light.
const BUCKETS = 120;
// Events of the log read back for "recent events" (its newest ones; the room's among them).
const RECENT_WINDOW = 5000;
const RECENT_SHOWN = 15;
// The charts of an open drawer are drawn again this often.
const CHART_REFRESH_MS = 60_000;

const CHARTS = [
  {
    id: "occupancy",
    title: "Occupancy",
    metrics: ["people", "occupancy", "presence"],
    options(metric) {
      if (metric === "people") return { unit: "people", digits: 1 };
      return { domain: [0, 1], format: (v) => `${number(v * 100)} %`, note: "share of sensor reports saying occupied" };
    },
  },
  {
    id: "co2",
    title: "CO2",
    metrics: ["co2"],
    options: () => ({ unit: "ppm", threshold: { value: CO2_LIMIT_PPM, label: `${number(CO2_LIMIT_PPM)} ppm` } }),
  },
  { id: "temperature", title: "Temperature", metrics: ["temperature"], options: () => ({ unit: "°C", digits: 1 }) },
  { id: "power", title: "Lighting power", metrics: ["power"], options: () => ({ unit: "W", digits: 0 }) },
];

function describeEvent(event) {
  const d = event.data || {};
  switch (event.kind) {
    case "occupancy":
      return `Occupancy: ${d.old} → ${d.new}`;
    case "command": {
      const what = d.payload ? Object.entries(d.payload).map(([k, v]) => `${k} ${v}`).join(", ") : "";
      const by = d.rule === "manual" ? "by a person" : d.rule ? `by rule ${d.rule}` : "";
      return `Command to ${d.device}${what ? `: ${what}` : ""} ${by} (${d.status || "sent"})`.replace("  ", " ");
    }
    case "override":
      return d.status === "released"
        ? `Rules resume on ${d.device}`
        : `Changed by hand at ${d.device}${d.state ? `: ${Object.values(d.state).join(", ")}` : ""}; rules paused`;
    case "alert":
      return `Alert: ${d.message || d.rule}`;
    case "booking_checked_in":
      return `Booking ${time(d.start)}–${time(d.end)} checked in`;
    case "booking_released":
      return `Booking ${time(d.start)}–${time(d.end)} released (${d.reason || "nobody came"})`;
    case "booking_ended":
      return `Booking ${time(d.start)}–${time(d.end)} ended`;
    case "audit":
      return `${d.actor || "someone"}: ${String(d.action || "").replaceAll("_", " ")}`;
    default:
      return `${event.kind}`;
  }
}

function fact(label, value, flag = false) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", { class: flag ? "flag" : null }, value));
}

export class RoomDrawer {
  constructor(dialog, { lastEventId, releasedOf, onClose }) {
    this.dialog = dialog;
    this.body = dialog.querySelector("#drawer-body");
    this.title = dialog.querySelector("#drawer-title");
    this.lastEventId = lastEventId;
    this.releasedOf = releasedOf;
    this.room = null;
    this.opener = null;
    this.explainTimer = null;
    this.chartTimer = null;
    dialog.querySelector("#drawer-close").addEventListener("click", () => this.close());
    dialog.addEventListener("close", () => {
      this.room = null;
      clearTimeout(this.explainTimer);
      this.explainTimer = null;
      clearInterval(this.chartTimer);
      if (this.opener && this.opener.isConnected) this.opener.focus();
      onClose();
    });
    // A click on the backdrop (outside the panel) closes it too.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) this.close();
    });
  }

  get roomId() {
    return this.room ? this.room.id : null;
  }

  open(room, opener) {
    this.room = room;
    this.opener = opener;
    this.title.textContent = room.name || room.id;
    this.facts = h("dl", { class: "facts" });
    this.why = h("div", { class: "why", "aria-live": "polite" }, "Loading the explanation…");
    this.lightStatus = h("p", { class: "note", role: "status" });
    this.charts = h("div", { class: "charts" }, h("p", { class: "note" }, "Loading history…"));
    this.bookings = h("ul", { class: "list" });
    this.events = h("ul", { class: "list", "aria-live": "polite" });
    this.chartWindow = h("p", { class: "note" });
    replace(
      this.body,
      h("p", { class: "note" }, `${room.building} · floor ${room.floor} · ${room.type}${room.capacity ? ` · ${room.capacity} seats` : ""}`),
      this.facts,
      h("h3", {}, "Why this state"),
      this.why,
      h("h3", {}, "Lights"),
      this.lightControls(),
      this.lightStatus,
      h("h3", {}, "History"),
      this.chartWindow,
      this.charts,
      h("h3", {}, "Today's bookings"),
      this.bookings,
      h("h3", {}, "Recent events"),
      this.events,
    );
    this.update(room);
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.querySelector("#drawer-close").focus();
    this.loadExplanation();
    this.loadCharts();
    this.loadBookings();
    this.loadEvents();
    clearInterval(this.chartTimer);
    this.chartTimer = setInterval(() => this.loadCharts(), CHART_REFRESH_MS);
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /** A new status of the open room (from the stream). */
  update(room) {
    if (!this.room || room.id !== this.room.id) return;
    this.room = room;
    const occ = room.occupancy;
    const env = room.environment;
    const lit = room.lighting;
    const state = { occupied: "Occupied", vacant: "Vacant", unknown: "No data" }[occ.state] || occ.state;
    replace(
      this.facts,
      fact(
        "Occupancy",
        `${occ.sensors_offline ? "▲ " : ""}${state}${occ.since ? ` since ${time(occ.since)}` : ""} (${number(occ.confidence * 100)} % sure)${occ.sensors_offline ? ", every presence sensor offline" : ""}`,
        occ.sensors_offline === true,
      ),
      fact("People", occ.people === null ? "not counted" : `${occ.people}${room.capacity ? ` of ${room.capacity}` : ""}`),
      fact("CO2", env.co2_ppm === null ? "–" : `${co2High(room) ? "▲ " : ""}${number(env.co2_ppm)} ppm${co2High(room) ? ", high" : ""}`, co2High(room)),
      fact("Temperature", env.temperature_c === null ? "–" : `${number(env.temperature_c, 1)} °C`),
      fact("Humidity", env.humidity_pct === null ? "–" : `${number(env.humidity_pct)} %`),
      fact("Light level", env.illuminance_lux === null ? "–" : `${number(env.illuminance_lux)} lx`),
      fact(
        "Lights",
        lit.on === null ? "no report" : lit.on ? `on${lit.brightness_pct !== null ? ` ${number(lit.brightness_pct)} %` : ""}${lit.power_w !== null ? `, ${number(lit.power_w, 1)} W` : ""}` : "off",
      ),
      fact("Energy today", `${kwh(room.energy.kwh_today)}${room.energy.kwh_wasted_today ? `, ${kwh(room.energy.kwh_wasted_today)} wasted` : ""}`),
      room.bookable ? fact("Booking", bookingText(room, this.releasedOf(room.id))) : null,
      room.access.door_open !== null || room.access.locked !== null
        ? fact("Door", `${room.access.door_open === null ? "" : room.access.door_open ? "open" : "closed"}${room.access.locked === null ? "" : room.access.locked ? ", locked" : ", unlocked"}`)
        : null,
    );
    // The explanation changes with the state; read it again, at most every 5 s.
    if (!this.explainTimer) {
      this.explainTimer = setTimeout(() => {
        this.explainTimer = null;
        this.loadExplanation();
      }, 5000);
    }
  }

  /** A live event; those of the open room go on top of its list. */
  event(event) {
    if (!this.room || event.room_id !== this.room.id) return;
    if (this.events.querySelector(`[data-seq="${Number(event.seq)}"]`)) return;
    const placeholder = this.events.querySelector(".note");
    if (placeholder) placeholder.remove();
    this.events.prepend(this.eventItem(event));
    while (this.events.children.length > RECENT_SHOWN) this.events.lastElementChild.remove();
    if (event.kind.startsWith("booking_")) this.loadBookings();
  }

  eventItem(event) {
    return h("li", { "data-kind": event.kind, "data-seq": event.seq }, h("span", { class: "when" }, when(event.at)), describeEvent(event));
  }

  async loadExplanation() {
    const room = this.room;
    if (!room) return;
    try {
      const why = await api.get(`v1/rooms/${encodeURIComponent(room.id)}/occupancy/explain`);
      if (this.room !== room && (!this.room || this.room.id !== room.id)) return;
      const ev = why.evidence || {};
      const items = [];
      if (ev.motion && ev.motion.last_seen) items.push(`Motion last seen ${ago(ev.motion.last_seen)}`);
      if (ev.people && ev.people.count !== null && ev.people.count !== undefined) items.push(`People counted: ${ev.people.count}`);
      if (ev.presence && ev.presence.devices && ev.presence.devices.length) items.push(`Presence reported by ${ev.presence.devices.join(", ")}`);
      if (ev.co2 && ev.co2.ppm !== null && ev.co2.ppm !== undefined) {
        const slope = ev.co2.slope_ppm_per_min;
        items.push(`CO2 ${number(ev.co2.ppm)} ppm${slope !== null && slope !== undefined ? `, ${slope > 0 ? "rising" : "falling"} ${number(Math.abs(slope), 1)} ppm/min` : ""}`);
      }
      if (ev.door && ev.door.closed !== null && ev.door.closed !== undefined) items.push(`Door ${ev.door.closed ? "closed" : "open"}`);
      const timers = why.timers || {};
      if (timers.vacant_at) items.push(`Turns vacant at ${time(timers.vacant_at)} without new evidence`);
      if (timers.held_by && timers.held_by.length) items.push(`Held occupied by: ${timers.held_by.join(", ")}`);
      replace(this.why, h("p", {}, why.why || why.reason), items.length ? h("ul", { class: "evidence" }, items.map((i) => h("li", {}, i))) : null);
    } catch (error) {
      replace(this.why, h("p", { class: "note" }, `Explanation ${error.summary || "failed"}.`));
    }
  }

  lightControls() {
    const level = h("input", { type: "range", min: 0, max: 100, step: 5, value: 80, id: "drawer-brightness", "aria-valuetext": "80 %" });
    const shown = h("output", { for: "drawer-brightness" }, "80 %");
    level.addEventListener("input", () => {
      shown.textContent = `${level.value} %`;
      level.setAttribute("aria-valuetext", `${level.value} %`);
    });
    return h(
      "div",
      { class: "controls" },
      h("button", { type: "button", "data-action": "lights-on", onclick: () => this.lights({ on: true }) }, "Turn on"),
      h("button", { type: "button", "data-action": "lights-off", onclick: () => this.lights({ on: false }) }, "Turn off"),
      h("label", { for: "drawer-brightness" }, "Brightness"),
      level,
      shown,
      h(
        "button",
        { type: "button", class: "secondary", "data-action": "lights-dim", onclick: () => this.lights({ on: true, brightness_pct: Number(level.value) }) },
        "Set brightness",
      ),
    );
  }

  async lights(body) {
    const room = this.room;
    if (!room) return;
    this.lightStatus.textContent = "Sending…";
    try {
      const result = await api.post(`v1/rooms/${encodeURIComponent(room.id)}/lights`, body);
      const lines = result.commands.map((c) => `${c.device_id}: ${c.outcome}${c.outcome === "sent" ? "" : ` (${c.detail})`}`);
      this.lightStatus.textContent = lines.length ? lines.join("; ") : "No lights answered.";
    } catch (error) {
      const why =
        error.status === 403
          ? "switching lights needs an operator key"
          : error.status === 409
            ? typeof error.detail === "string" ? error.detail : "this room has no lights"
            : error.summary;
      this.lightStatus.textContent = `Not sent: ${why}.`;
    }
  }

  async loadCharts() {
    const room = this.room;
    if (!room) return;
    const path = `v1/rooms/${encodeURIComponent(room.id)}`;
    try {
      const recorded = await api.get(`${path}/metrics`);
      const byName = new Map(recorded.metrics.map((m) => [m.metric, m]));
      const end = Date.now();
      const chosen = CHARTS.map((chart) => ({ chart, metric: chart.metrics.find((m) => byName.has(m)) }));
      // The last 24 h, or since the first reading when the room is younger than that.
      const firsts = chosen.filter((c) => c.metric).map((c) => new Date(byName.get(c.metric).first).getTime());
      const start = Math.min(end - 60_000, Math.max(end - DAY_MS, firsts.length ? Math.min(...firsts) : end - DAY_MS));
      const step = Math.max(1, Math.ceil((end - start) / 1000 / BUCKETS));
      this.chartWindow.textContent =
        end - start >= DAY_MS - 1000
          ? "The last 24 hours, buckets of " + (step >= 60 ? `${Math.round(step / 60)} min` : `${step} s`) + "."
          : `Since the first reading at ${time(start)}, buckets of ${step} s.`;
      const figures = await Promise.all(
        chosen.map(async ({ chart, metric }) => {
          const figure = h("figure", { class: "chart", "data-chart": chart.id });
          if (!metric) {
            return replace(figure, h("figcaption", {}, chart.title), h("p", { class: "note" }, "No readings recorded in this room."));
          }
          const history = await api.get(`${path}/history`, {
            metric,
            step,
            start: new Date(start).toISOString(),
            end: new Date(end).toISOString(),
          });
          const points = history.points.map((p) => ({ t: new Date(p.t).getTime(), mean: p.mean, min: p.min, max: p.max }));
          const options = chart.options(metric);
          if (!points.length) {
            return replace(figure, h("figcaption", {}, chart.title), h("p", { class: "note" }, "No readings in this window."));
          }
          const latest = points[points.length - 1].mean;
          const show = options.format || ((v) => `${number(v, options.digits || 0)} ${options.unit || ""}`);
          return replace(
            figure,
            h("figcaption", {}, h("span", {}, chart.title), h("span", { class: "latest" }, `latest ${show(latest)}`)),
            timeChart(points, { ...options, start, end, step: step * 1000, label: chart.title }),
            options.note ? h("p", { class: "note" }, options.note) : null,
          );
        }),
      );
      if (this.room && this.room.id === room.id) replace(this.charts, figures);
    } catch (error) {
      replace(this.charts, h("p", { class: "note" }, `History ${error.summary || "failed"}.`));
    }
  }

  async loadBookings() {
    const room = this.room;
    if (!room) return;
    if (!room.bookable) {
      replace(this.bookings, h("li", { class: "note" }, "This room is not bookable."));
      return;
    }
    const today = startOfToday();
    const tomorrow = new Date(today.getTime() + DAY_MS);
    try {
      const page = await api.get("v1/bookings", {
        room_id: room.id,
        start: today.toISOString(),
        end: tomorrow.toISOString(),
        limit: 200,
      });
      const items = page.bookings.map((b) =>
        h(
          "li",
          { "data-status": b.status },
          h("span", { class: "when" }, `${time(b.start)}–${time(b.end)}`),
          `${b.status.replace("_", " ")}${b.title ? `: ${b.title}` : ""}${b.organizer ? ` (${b.organizer})` : ""}`,
        ),
      );
      replace(this.bookings, items.length ? items : h("li", { class: "note" }, "No bookings today."));
    } catch (error) {
      replace(this.bookings, h("li", { class: "note" }, `Bookings ${error.summary || "failed"}.`));
    }
  }

  async loadEvents() {
    const room = this.room;
    if (!room) return;
    const last = Number(this.lastEventId() || 0);
    try {
      const page = await api.get("v1/events", { room: room.id, after: Math.max(0, last - RECENT_WINDOW), limit: 1000 });
      const recent = page.events.slice(-RECENT_SHOWN).reverse();
      replace(this.events, recent.length ? recent.map((e) => this.eventItem(e)) : h("li", { class: "note" }, "Nothing recent."));
    } catch (error) {
      replace(this.events, h("li", { class: "note" }, `Events ${error.summary || "failed"}.`));
    }
  }
}
