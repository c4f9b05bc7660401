// The dashboard's composition: state, views, the live stream and the key.

import { RuleActivity } from "./activity.js";
import { ApiError, api, keys, whenUnauthorized } from "./api.js";
import { BuildingPanel } from "./building.js";
import { DevicesPage } from "./devices.js";
import { floorOrder, h, replace, startOfToday } from "./dom.js";
import { RoomDrawer } from "./drawer.js";
import { fillTile, layOut } from "./floor.js";
import { follow } from "./stream.js";

const REFRESH_DEVICES_MS = 30_000;
const REFRESH_REPORTS_MS = 30_000;
const REFRESH_BOOKINGS_MS = 60_000;
const DAY_MS = 86_400_000;

const el = (id) => document.getElementById(id);

const state = {
  rooms: new Map(),
  tiles: new Map(),
  // Per room, today's released booking that ends last (a tile says "released" while it would run).
  released: new Map(),
  building: null,
  floor: null,
  view: "floor",
  layoutKey: "",
  lastEventId: null,
  started: false,
  connection: "connecting",
};

let stream = null;
let drawer = null;
let devices = null;
let panel = null;
let activity = null;
let bookingsTimer = null;

// Views and pickers

function roomsWhere(test) {
  return [...state.rooms.values()].filter(test);
}

function buildings() {
  return [...new Set(roomsWhere(() => true).map((r) => r.building))].sort();
}

function floorsOf(building) {
  return [...new Set(roomsWhere((r) => r.building === building).map((r) => r.floor))].sort(floorOrder);
}

function readHash() {
  const [view, building, floor] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  state.view = view === "devices" ? "devices" : "floor";
  if (building) state.building = building;
  if (floor) state.floor = floor;
}

function writeHash() {
  const parts = state.view === "devices" ? ["devices"] : ["floor", state.building || "", state.floor || ""];
  history.replaceState(null, "", `#/${parts.map(encodeURIComponent).join("/")}`);
}

function choosePlace() {
  const all = buildings();
  if (!all.includes(state.building)) state.building = all[0] || null;
  const floors = floorsOf(state.building);
  if (!floors.includes(state.floor)) state.floor = floors[0] || null;
}

function renderPickers() {
  const select = el("building-picker");
  const all = buildings();
  replace(select, all.map((b) => h("option", { value: b, selected: b === state.building }, b)));
  select.disabled = all.length < 2;
  const floors = floorsOf(state.building);
  replace(
    el("floor-picker"),
    floors.map((f) => {
      const button = h("button", { type: "button", "aria-pressed": String(f === state.floor), "data-floor": f }, `Floor ${f}`);
      button.addEventListener("click", () => {
        state.floor = f;
        showFloor();
      });
      return button;
    }),
  );
}

function showView() {
  el("floor-view").hidden = state.view !== "floor";
  el("devices-view").hidden = state.view !== "devices";
  el("pickers").hidden = state.view !== "floor";
  for (const [id, view] of [["nav-floor", "floor"], ["nav-devices", "devices"]]) {
    if (state.view === view) el(id).setAttribute("aria-current", "page");
    else el(id).removeAttribute("aria-current");
  }
  if (state.view === "devices" && state.started) devices.load();
}

function showFloor() {
  choosePlace();
  writeHash();
  renderPickers();
  state.layoutKey = "";
  renderFloor();
  panel.show(state.building);
  activity.render();
}

function tileFor(room) {
  let tile = state.tiles.get(room.id);
  if (!tile) {
    tile = h("button", { type: "button", class: "tile" });
    tile.addEventListener("click", () => drawer.open(state.rooms.get(room.id), tile));
    state.tiles.set(room.id, tile);
  }
  return tile;
}

function floorRooms() {
  return roomsWhere((r) => r.building === state.building && r.floor === state.floor);
}

function planOf(room) {
  return room.plan ? `${room.plan.x},${room.plan.y},${room.plan.w},${room.plan.h}` : "";
}

function fill(room, offline = devices.offlineByRoom()) {
  fillTile(tileFor(room), room, { offline: offline.get(room.id) || 0, released: state.released.get(room.id) });
}

function renderTitle(rooms = floorRooms()) {
  const occupied = rooms.filter((r) => r.occupancy.state === "occupied").length;
  el("floor-title").textContent = state.building
    ? `${state.building}, floor ${state.floor}: ${occupied} of ${rooms.length} rooms occupied`
    : "No rooms";
}

let energyTimer = null;
/** The live energy figures, at most once a second however many rooms change. */
function renderEnergy() {
  if (energyTimer) return;
  energyTimer = setTimeout(() => {
    energyTimer = null;
    panel.liveEnergy(roomsWhere((r) => r.building === state.building));
  }, 1000);
}

/** The whole floor: its plan when rooms came, went or moved, every tile's content. */
function renderFloor() {
  const rooms = floorRooms();
  const key = rooms
    .map((r) => `${r.id}:${planOf(r)}`)
    .sort()
    .join("|");
  if (key !== state.layoutKey) {
    state.layoutKey = key;
    layOut(el("plan"), rooms, tileFor);
  }
  const offline = devices.offlineByRoom();
  for (const room of rooms) fill(room, offline);
  renderTitle(rooms);
  renderEnergy();
}

// Data

async function loadReleased() {
  const today = startOfToday();
  try {
    const page = await api.get("v1/bookings", {
      status: "released",
      start: today.toISOString(),
      end: new Date(today.getTime() + DAY_MS).toISOString(),
      limit: 1000,
    });
    state.released = new Map();
    for (const booking of page.bookings) {
      const known = state.released.get(booking.room_id);
      if (!known || new Date(known.end) < new Date(booking.end)) state.released.set(booking.room_id, booking);
    }
    renderFloor();
  } catch {
    /* the tiles go on without "released" */
  }
}

function bookingsChanged() {
  clearTimeout(bookingsTimer);
  bookingsTimer = setTimeout(loadReleased, 500);
}

function onRoom(room) {
  const known = state.rooms.get(room.id);
  // Stream room events carry bookings as a viewer sees them; keep titles a fuller key fetched.
  if (known && known.booking && room.booking) {
    for (const which of ["current", "next"]) {
      const before = known.booking[which];
      const now = room.booking[which];
      if (before && now && before.id === now.id) now.title = now.title ?? before.title;
    }
  }
  state.rooms.set(room.id, room);
  const moved = !known || known.building !== room.building || known.floor !== room.floor;
  if (moved) {
    choosePlace();
    renderPickers();
  }
  if (room.building === state.building && room.floor === state.floor) {
    // One room changed: its tile alone, unless the plan itself changed.
    if (moved || planOf(known) !== planOf(room)) renderFloor();
    else {
      fill(room);
      renderTitle();
    }
  }
  if (room.building === state.building) renderEnergy();
  drawer.update(room);
}

function onEvent(message) {
  if (message.event === "room") {
    onRoom(JSON.parse(message.data));
    return;
  }
  if (message.id !== null) state.lastEventId = message.id;
  if (message.event === "ready") {
    const ready = JSON.parse(message.data);
    state.lastEventId = String(ready.last_id);
    // The commands before this one, once per connection (after a gap some were missed).
    activity.load(state.lastEventId);
    return;
  }
  if (message.id === null) return;
  const event = JSON.parse(message.data);
  drawer.event(event);
  activity.event(event);
  if (event.kind === "alert") panel.alertsChanged();
  if (event.kind.startsWith("booking_")) bookingsChanged();
  if (["command", "occupancy", "override"].includes(event.kind)) panel.reportsChanged();
}

function onState(connection, detail) {
  const was = state.connection;
  state.connection = connection;
  const pill = el("connection");
  pill.dataset.state = connection;
  const banner = el("banner");
  if (connection === "live") {
    pill.textContent = "Live";
    pill.title = "";
    banner.hidden = true;
    if (was === "lost") refreshAll();
  } else if (connection === "connecting") {
    pill.textContent = "Connecting…";
  } else if (connection === "lost") {
    pill.textContent = "Connection lost, retrying";
    pill.title = `attempt ${detail.attempt}: ${detail.reason}`;
    // Said once when the connection goes (the banner is an alert), not on every retry.
    if (was !== "lost") {
      banner.hidden = false;
      replace(
        banner,
        `Connection lost, retrying (${detail.reason}). ` +
          "The floor shows the last known state until the gateway answers again.",
      );
    }
  } else if (connection === "refused") {
    pill.textContent = "Key refused";
    askForKey(detail.status === 403 ? "This key may not follow the live stream." : "The key was refused.");
  }
}

function refreshAll() {
  devices.load().then(renderFloor);
  loadReleased();
  panel.show(state.building);
}

// The key

function askForKey(reason) {
  const dialog = el("key-dialog");
  el("key-reason").textContent = reason;
  el("key-error").textContent = "";
  const banner = el("banner");
  banner.hidden = false;
  const again = h("button", { type: "button", class: "secondary" }, "Enter API key");
  again.addEventListener("click", () => askForKey(reason));
  replace(banner, `${reason} The dashboard needs an API key. `, again);
  if (!dialog.open) dialog.showModal();
  el("key-input").focus();
}

async function useKey(event) {
  event.preventDefault();
  const input = el("key-input");
  const key = input.value.trim();
  if (!key) return;
  const previous = keys.get();
  keys.set(key);
  try {
    await api.get("v1/rooms");
  } catch (error) {
    if (previous) keys.set(previous);
    else keys.forget();
    el("key-error").textContent = error instanceof ApiError ? `Not used: ${error.summary}.` : "Not used.";
    return;
  }
  input.value = "";
  el("key-dialog").close();
  el("banner").hidden = true;
  el("key-button").hidden = false;
  if (!state.started) start();
  else {
    stream.restart();
    refreshAll();
  }
}

// Start

async function start() {
  let rooms;
  try {
    rooms = await api.get("v1/rooms");
  } catch (error) {
    if (error.status === 401) return; // whenUnauthorized asked for a key
    const banner = el("banner");
    banner.hidden = false;
    replace(banner, `Cannot load the rooms (${error.summary}); trying again.`);
    setTimeout(start, 3000);
    return;
  }
  el("banner").hidden = true;
  state.started = true;
  for (const room of rooms.rooms) state.rooms.set(room.id, room);
  el("key-button").hidden = !keys.get();
  showFloor();
  showView();
  devices.load().then(renderFloor);
  loadReleased();
  stream = follow("v1/stream", { onEvent, onState });
  setInterval(() => devices.load().then(renderFloor), REFRESH_DEVICES_MS);
  setInterval(() => panel.refreshReports(), REFRESH_REPORTS_MS);
  setInterval(() => panel.refreshAlerts(), REFRESH_REPORTS_MS);
  setInterval(loadReleased, REFRESH_BOOKINGS_MS);
}

function tick() {
  el("clock").textContent = new Date().toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function init() {
  readHash();
  whenUnauthorized(() => askForKey("This gateway needs an API key."));
  drawer = new RoomDrawer(el("drawer"), {
    lastEventId: () => state.lastEventId,
    releasedOf: (roomId) => state.released.get(roomId),
    onClose: () => {},
  });
  devices = new DevicesPage(el("devices-view"));
  panel = new BuildingPanel({
    kpis: document.querySelector(".kpis"),
    alertsList: el("alerts-list"),
    alertsNote: el("alerts-note"),
    roomOf: (id) => state.rooms.get(id),
  });
  activity = new RuleActivity(el("actions-list"), {
    roomOf: (id) => state.rooms.get(id),
    building: () => state.building,
  });
  el("building-picker").addEventListener("change", (event) => {
    state.building = event.target.value;
    state.floor = null;
    showFloor();
  });
  el("key-form").addEventListener("submit", useKey);
  el("key-button").addEventListener("click", () => {
    keys.forget();
    location.reload();
  });
  window.addEventListener("hashchange", () => {
    readHash();
    showView();
    if (state.started && state.view === "floor") showFloor();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && stream && state.connection === "lost") stream.restart();
  });
  tick();
  setInterval(tick, 10_000);
  showView();
  start();
}

init();
