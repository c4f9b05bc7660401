// The floor plan: one tile (a button) per room, placed by the site config's x, y, w, h
// where given, in the free cells otherwise.

import { h, number, replace, time } from "./dom.js";

export const CO2_LIMIT_PPM = 1000;

const STATE_TEXT = { occupied: "Occupied", vacant: "Vacant", unknown: "No data" };

/** The booking line of a room: what a person at the door wants to know. */
export function bookingText(room, released, now = Date.now()) {
  if (!room.bookable) return null;
  const current = room.booking && room.booking.current;
  if (current && current.status === "checked_in") return `Checked in until ${time(current.end)}`;
  if (current && current.status === "booked") return `Booked until ${time(current.end)}, not checked in`;
  if (released && new Date(released.end).getTime() > now) {
    return `Released ${time(released.start)}–${time(released.end)} (nobody came)`;
  }
  const next = room.booking && room.booking.next;
  if (next) return `Free, next booking ${time(next.start)}`;
  return "Free, no booking";
}

export function co2High(room) {
  const ppm = room.environment && room.environment.co2_ppm;
  return ppm !== null && ppm !== undefined && ppm > CO2_LIMIT_PPM;
}

export function lightsWasted(room) {
  return room.lighting && room.lighting.on === true && room.occupancy.state === "vacant";
}

/** The tile's content, rebuilt on every change (the button itself stays, and with it focus). */
export function fillTile(tile, room, { offline = 0, released = null } = {}) {
  const state = room.occupancy.state;
  tile.dataset.room = room.id;
  tile.dataset.occupancy = state;
  tile.dataset.co2High = co2High(room) ? "true" : "false";
  tile.dataset.lights = room.lighting.on === null ? "none" : room.lighting.on ? "on" : "off";

  const people = room.occupancy.people;
  const capacity = room.capacity ? ` of ${room.capacity}` : "";
  const peopleText =
    people !== null && people !== undefined
      ? `${people}${capacity} ${people === 1 && !capacity ? "person" : "people"}`
      : room.capacity
        ? `seats ${room.capacity}`
        : null;

  const env = room.environment;
  const climate = [];
  if (env.co2_ppm !== null) {
    climate.push(
      co2High(room)
        ? h("span", { class: "flag" }, `▲ CO2 ${number(env.co2_ppm)} ppm, high`)
        : h("span", {}, `CO2 ${number(env.co2_ppm)} ppm`),
    );
  }
  if (env.temperature_c !== null) climate.push(h("span", {}, `${number(env.temperature_c, 1)} °C`));

  const lighting = room.lighting;
  let lights = null;
  if (lighting.on === true) {
    const level = lighting.brightness_pct !== null ? ` ${number(lighting.brightness_pct)} %` : "";
    lights = lightsWasted(room)
      ? h("span", { class: "flag" }, `▲ Lights on${level} in an empty room`)
      : h("span", {}, `Lights on${level}`);
  } else if (lighting.on === false) {
    lights = h("span", { class: "muted" }, "Lights off");
  }

  const booking = bookingText(room, released);
  replace(
    tile,
    h(
      "span",
      { class: "tile-head" },
      h("span", { class: "tile-name" }, room.name || room.id),
      h("span", { class: "tile-state" }, STATE_TEXT[state] || state),
    ),
    peopleText && h("span", { class: "tile-line" }, peopleText),
    climate.length ? h("span", { class: "tile-line" }, climate) : null,
    lights && h("span", { class: "tile-line" }, lights),
    booking && h("span", { class: "tile-line" }, booking),
    offline > 0 &&
      h("span", { class: "tile-line flag" }, `▲ ${offline} device${offline === 1 ? "" : "s"} offline`),
  );
  return tile;
}

/** Puts the rooms of one floor on `plan`; `tileFor(room)` makes or finds a room's tile. */
export function layOut(plan, rooms, tileFor) {
  const placed = rooms.filter((room) => room.plan);
  const columns = placed.reduce((most, room) => Math.max(most, room.plan.x + room.plan.w), 0);
  plan.classList.toggle("placed", placed.length > 0);
  if (placed.length) plan.style.setProperty("--plan-columns", String(Math.max(columns, 2)));
  const ordered = [...placed.sort((a, b) => a.plan.y - b.plan.y || a.plan.x - b.plan.x)];
  ordered.push(...rooms.filter((room) => !room.plan).sort((a, b) => a.id.localeCompare(b.id)));
  const tiles = ordered.map((room) => {
    const tile = tileFor(room);
    if (room.plan) {
      tile.style.gridColumn = `${room.plan.x + 1} / span ${room.plan.w}`;
      tile.style.gridRow = `${room.plan.y + 1} / span ${room.plan.h}`;
    } else {
      tile.style.gridColumn = "";
      tile.style.gridRow = "";
    }
    return tile;
  });
  if (tiles.length) replace(plan, tiles);
  else replace(plan, h("p", { class: "empty" }, "No rooms on this floor."));
}
