// What the rules (and people) just did to the building's devices: the newest commands
// sent, from the event log and then live from the stream.

import { api } from "./api.js";
import { h, number, replace, when } from "./dom.js";

const SHOWN = 8;
// Events of the log read back at the start (the newest ones; the commands among them).
const LOOK_BACK = 5000;

function what(data) {
  const payload = data.payload || {};
  const parts = [];
  if (payload.state) parts.push(String(payload.state).toLowerCase());
  if (payload.brightness !== undefined) parts.push(`at ${number((payload.brightness / 254) * 100)} %`);
  if (payload.setpoint !== undefined) parts.push(`setpoint ${number(payload.setpoint, 1)} °C`);
  if (payload.mode) parts.push(`mode ${payload.mode}`);
  return `${data.device} ${parts.join(" ") || "commanded"}`;
}

export class RuleActivity {
  constructor(list, { roomOf, building }) {
    this.list = list;
    this.roomOf = roomOf;
    this.building = building;
    this.commands = [];
  }

  mine(event) {
    const room = event.room_id ? this.roomOf(event.room_id) : null;
    return room && room.building === this.building();
  }

  async load(lastEventId) {
    try {
      const page = await api.get("v1/events", {
        kind: "command",
        after: Math.max(0, Number(lastEventId || 0) - LOOK_BACK),
        limit: 1000,
      });
      // Live ones may have come in meanwhile: merge by sequence number.
      const bySeq = new Map(this.commands.map((e) => [e.seq, e]));
      for (const e of page.events) if (e.data.status === "sent") bySeq.set(e.seq, e);
      this.commands = [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-200);
      this.render();
    } catch (error) {
      replace(this.list, h("li", { class: "note" }, `Rule actions ${error.summary}.`));
    }
  }

  event(event) {
    if (event.kind !== "command" || event.data.status !== "sent") return;
    this.commands.push(event);
    if (this.commands.length > 200) this.commands.splice(0, this.commands.length - 200);
    this.render();
  }

  render() {
    const shown = this.commands.filter((e) => this.mine(e)).slice(-SHOWN).reverse();
    replace(
      this.list,
      shown.length
        ? shown.map((e) => {
            const room = this.roomOf(e.room_id);
            const by = e.data.rule === "manual" ? "by a person" : `rule ${e.data.rule}`;
            return h(
              "li",
              { "data-seq": e.seq, "data-rule": e.data.rule },
              h("span", { class: "when" }, when(e.at)),
              ` ${room.name || room.id}: ${what(e.data)} (${by})`,
            );
          })
        : h("li", { class: "note" }, "No commands yet today."),
    );
  }
}
