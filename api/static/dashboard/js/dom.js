// Building DOM without innerHTML: every value from the API goes in as text, so a room
// named "<script>" is shown, never run (the page's CSP would refuse it anyway).

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function setProps(node, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.setAttribute("class", value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  return node;
}

/** An HTML element: h("p", {class: "note"}, "text", child, ...). */
export function h(tag, props, ...children) {
  return append(setProps(document.createElement(tag), props), children);
}

/** An SVG element, the same way. */
export function s(tag, props, ...children) {
  return append(setProps(document.createElementNS(SVG_NS, tag), props), children);
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const clockSeconds = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dayClock = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });

export function time(value) {
  if (!value) return "–";
  return clock.format(new Date(value));
}

export function timeSeconds(value) {
  if (!value) return "–";
  return clockSeconds.format(new Date(value));
}

/** A time today as hh:mm, another day with its weekday. */
export function when(value) {
  if (!value) return "–";
  const date = new Date(value);
  return sameDay(date, new Date()) ? clock.format(date) : dayClock.format(date);
}

export function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function ago(value, now = Date.now()) {
  if (!value) return "never";
  const seconds = Math.max(0, (now - new Date(value).getTime()) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Energy: Wh below one kWh (a quiet morning, a demo), kWh with fitting digits above. */
export function kwh(value) {
  if (value === null || value === undefined) return "–";
  if (Math.abs(value) < 1) return `${number(value * 1000)} Wh`;
  return `${number(value, Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2)} kWh`;
}

/** Whether an energy figure shows as more than nothing. */
export function someEnergy(value) {
  return value !== null && value !== undefined && value >= 0.0005;
}

export function startOfToday() {
  const now = new Date();
  return new Date(now.getFullYear(), now.getMonth(), now.getDate());
}

/** Sorts floor names as people do: "2" before "10", "B1" after numbers. */
export function floorOrder(a, b) {
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}
