// The devices page: every device of the key's buildings with availability, battery,
// message rate, data-quality flags and the dead letters of its topic.

import { allPages, api } from "./api.js";
import { ago, h, number, replace, when } from "./dom.js";

function flagsOf(device) {
  const q = device.quality;
  const flags = [];
  if (q.flooding) flags.push("flooding");
  if (q.stuck) flags.push("stuck");
  if (q.battery_low) flags.push("battery low");
  if (q.schema_drift && q.schema_drift.length) flags.push(`schema drift: ${q.schema_drift.join(", ")}`);
  if (q.throttled) flags.push(`${q.throttled} throttled`);
  return flags;
}

/** Dead letters per device: those on its topic or one level under it (`/availability`, `/set`). */
function deadLettersByDevice(devices, letters) {
  const byTopic = new Map(devices.filter((d) => d.topic).map((d) => [d.topic, d.id]));
  const counts = new Map();
  for (const letter of letters) {
    const parent = letter.topic.slice(0, Math.max(0, letter.topic.lastIndexOf("/")));
    const device = byTopic.get(letter.topic) || byTopic.get(parent);
    if (device) counts.set(device, (counts.get(device) || 0) + 1);
  }
  return counts;
}

const COLUMNS = [
  { key: "id", label: "Device", value: (d) => d.id },
  { key: "room", label: "Room", value: (d) => d.room_id },
  { key: "kind", label: "Kind", value: (d) => `${d.kind} (${d.dialect})` },
  { key: "online", label: "Online", value: (d) => (d.online === null ? 1 : d.online ? 2 : 0) },
  { key: "last_seen", label: "Last seen", value: (d) => (d.last_seen ? new Date(d.last_seen).getTime() : 0) },
  { key: "battery", label: "Battery", value: (d) => (d.battery === null ? -1 : d.battery), numeric: true },
  { key: "rate", label: "Messages/s", value: (d) => d.quality.message_rate, numeric: true },
  { key: "flags", label: "Quality flags", value: (d) => d.flags.length },
  { key: "dead", label: "Dead letters", value: (d) => d.dead, numeric: true },
];

const FILTERS = {
  all: () => true,
  offline: (d) => d.online === false,
  online: (d) => d.online === true,
  flagged: (d) => d.flags.length > 0,
  battery: (d) => d.quality.battery_low,
  dead: (d) => d.dead > 0,
};

export class DevicesPage {
  constructor(section) {
    this.section = section;
    this.table = section.querySelector("#device-table");
    this.deadTable = section.querySelector("#dead-table");
    this.search = section.querySelector("#device-search");
    this.filter = section.querySelector("#device-filter");
    this.count = section.querySelector("#device-count");
    this.deadNote = section.querySelector("#dead-note");
    this.devices = [];
    this.letters = [];
    this.offline = new Map();
    this.sort = { key: "online", ascending: true };
    this.search.addEventListener("input", () => this.render());
    this.filter.addEventListener("change", () => this.render());
    this.header();
  }

  header() {
    const row = this.table.querySelector("thead tr");
    replace(
      row,
      COLUMNS.map((column) => {
        const th = h("th", { scope: "col", "data-column": column.key });
        const button = h("button", { type: "button" }, column.label);
        button.addEventListener("click", () => {
          const same = this.sort.key === column.key;
          this.sort = { key: column.key, ascending: same ? !this.sort.ascending : true };
          this.render();
        });
        th.append(button);
        return th;
      }),
    );
  }

  async load() {
    try {
      const [devices, letters] = await Promise.all([
        api.get("v1/devices"),
        allPages("v1/dead-letters", "dead_letters", {}, 2).catch(() => []),
      ]);
      this.letters = letters;
      const dead = deadLettersByDevice(devices.devices, letters);
      this.devices = devices.devices.map((d) => ({ ...d, flags: flagsOf(d), dead: dead.get(d.id) || 0 }));
      this.offline = new Map();
      for (const d of this.devices) {
        if (d.online === false) this.offline.set(d.room_id, (this.offline.get(d.room_id) || 0) + 1);
      }
      this.render();
    } catch (error) {
      this.count.textContent = `Devices ${error.summary}.`;
    }
  }

  /** Offline devices per room (as of the last load), for the floor's tiles. */
  offlineByRoom() {
    return this.offline;
  }

  render() {
    const text = this.search.value.trim().toLowerCase();
    const wanted = FILTERS[this.filter.value] || FILTERS.all;
    const column = COLUMNS.find((c) => c.key === this.sort.key);
    const direction = this.sort.ascending ? 1 : -1;
    const rows = this.devices
      .filter(wanted)
      .filter((d) => !text || [d.id, d.name, d.room_id, d.kind, d.dialect].some((v) => v && v.toLowerCase().includes(text)))
      .sort((a, b) => {
        const x = column.value(a);
        const y = column.value(b);
        const order = typeof x === "string" ? x.localeCompare(y) : x - y;
        return order * direction || a.id.localeCompare(b.id);
      });
    for (const th of this.table.querySelectorAll("thead th")) {
      if (th.dataset.column === this.sort.key) th.setAttribute("aria-sort", this.sort.ascending ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const now = Date.now();
    replace(
      this.table.querySelector("tbody"),
      rows.map((d) =>
        h(
          "tr",
          { "data-device": d.id },
          h("th", { scope: "row" }, d.name ? `${d.name} ` : "", h("code", {}, d.id)),
          h("td", {}, d.room_id),
          h("td", {}, `${d.kind} (${d.dialect})`),
          h(
            "td",
            {},
            d.online === null
              ? h("span", { class: "pill neutral" }, "unknown")
              : d.online
                ? h("span", { class: "pill good" }, "✓ online")
                : h("span", { class: "pill bad" }, "✕ offline"),
          ),
          h("td", { title: d.last_seen || "" }, ago(d.last_seen, now)),
          h("td", { class: "num" }, d.battery === null ? "–" : `${d.quality.battery_low ? "▲ " : ""}${number(d.battery)} %`),
          h("td", { class: "num" }, number(d.quality.message_rate, 2)),
          h("td", {}, d.flags.length ? d.flags.map((f) => h("span", { class: "pill bad" }, f)) : h("span", { class: "pill good" }, "none")),
          h("td", { class: "num" }, number(d.dead)),
        ),
      ),
    );
    const offline = this.devices.filter((d) => d.online === false).length;
    this.count.textContent = `${rows.length} of ${this.devices.length} devices shown; ${offline} offline.`;

    const letters = this.letters.slice(-50).reverse();
    this.deadNote.textContent = this.letters.length
      ? `The newest ${letters.length} of ${this.letters.length} rejected messages kept.`
      : "No rejected messages.";
    replace(
      this.deadTable.querySelector("tbody"),
      letters.map((l) => h("tr", {}, h("td", {}, when(l.at)), h("td", {}, h("code", {}, l.topic)), h("td", {}, l.reason), h("td", {}, l.detail))),
    );
  }
}
