// The building's figures for today (from the reports API) and its open alerts (with
// acknowledge, from the alert lifecycle API). A gateway without those endpoints
// answers 404: the panel then says "not available" and shows what it can from
// live room status instead.

import { allPages, api } from "./api.js";
import { h, kwh, number, replace, someEnergy, when } from "./dom.js";

const SHOWN_ALERTS = 12;

function setKpi(root, name, value, note, { available = true, warn = false } = {}) {
  const card = root.querySelector(`[data-kpi="${name}"]`);
  card.dataset.available = String(available);
  card.dataset.warn = String(warn);
  card.querySelector(".kpi-value").textContent = value;
  card.querySelector(".kpi-note").textContent = note || "";
}

function unavailable(error) {
  if (error && error.status === 404) return "reports are not on this gateway";
  if (error && error.status === 403) return "not for this key";
  return error ? error.summary : "";
}

async function report(name, building) {
  return api.get(`v1/reports/${name}`, { group_by: "building", bucket: "none", building });
}

export class BuildingPanel {
  constructor({ kpis, alertsList, alertsNote, roomOf, onAlerts }) {
    this.kpis = kpis;
    this.alertsList = alertsList;
    this.alertsNote = alertsNote;
    this.roomOf = roomOf;
    this.onAlerts = onAlerts || (() => {});
    this.building = null;
    this.energyFromReports = false;
    this.alertTimer = null;
    this.reportTimer = null;
  }

  show(building) {
    this.building = building;
    this.refreshReports();
    this.refreshAlerts();
  }

  /** Debounced: many events in a burst make one request. */
  alertsChanged() {
    clearTimeout(this.alertTimer);
    this.alertTimer = setTimeout(() => this.refreshAlerts(), 500);
  }

  reportsChanged() {
    if (this.reportTimer) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = null;
      this.refreshReports();
    }, 5000);
  }

  async refreshReports() {
    const building = this.building;
    if (!building) return;
    const [utilization, energy] = await Promise.allSettled([report("utilization", building), report("energy", building)]);
    if (building !== this.building) return;
    if (utilization.status === "fulfilled") {
      const totals = utilization.value.totals;
      setKpi(this.kpis, "utilization", totals.utilization === null ? "–" : `${number(totals.utilization * 100)} %`, "of business hours, occupied");
      setKpi(this.kpis, "no_shows", number(totals.no_shows), `of ${number(totals.bookings)} bookings`, { warn: totals.no_shows > 0 });
    } else {
      const why = unavailable(utilization.reason);
      setKpi(this.kpis, "utilization", "not available", why, { available: false });
      setKpi(this.kpis, "no_shows", "not available", why, { available: false });
    }
    if (energy.status === "fulfilled") {
      const { totals, meta } = energy.value;
      this.energyFromReports = true;
      const money = (value) => (value === null || value === undefined ? "" : `${number(value, 2)} ${meta.currency || ""}`.trim());
      setKpi(this.kpis, "kwh", kwh(totals.kwh), money(totals.cost));
      setKpi(this.kpis, "wasted", kwh(totals.kwh_vacant), "lights on in empty rooms", { warn: someEnergy(totals.kwh_vacant) });
      setKpi(this.kpis, "saved", kwh(totals.saved_kwh), money(totals.saved_cost) || "against the baseline");
    } else {
      this.energyFromReports = false;
      setKpi(this.kpis, "saved", "not available", unavailable(energy.reason), { available: false });
    }
  }

  /** Energy from live room status, while the energy report is not available. */
  liveEnergy(rooms) {
    if (this.energyFromReports) return;
    const total = rooms.reduce((sum, r) => sum + (r.energy.kwh_today || 0), 0);
    const wasted = rooms.reduce((sum, r) => sum + (r.energy.kwh_wasted_today || 0), 0);
    setKpi(this.kpis, "kwh", kwh(total), "live room meters, UTC day");
    setKpi(this.kpis, "wasted", kwh(wasted), "lights on in empty rooms (live)", { warn: someEnergy(wasted) });
  }

  inBuilding(alert) {
    if (!alert.room_id) return true;
    const room = this.roomOf(alert.room_id);
    return !room || room.building === this.building;
  }

  async refreshAlerts() {
    const building = this.building;
    if (!building) return;
    let alerts;
    try {
      alerts = await allPages("v1/alerts", "events", { state: "open" });
    } catch (error) {
      replace(this.alertsList);
      this.alertsNote.textContent = `Alerts ${error.summary}.`;
      setKpi(this.kpis, "alerts", "not available", error.summary, { available: false });
      return;
    }
    if (building !== this.building) return;
    // Without the alert lifecycle a gateway ignores `state` and has no acknowledge.
    const lifecycle = alerts.some((a) => "state" in a);
    const mine = alerts.filter((a) => this.inBuilding(a) && (!lifecycle || a.state === "open")).reverse();
    if (lifecycle || !alerts.length) {
      setKpi(this.kpis, "alerts", number(mine.length), mine.length ? "waiting for acknowledgement" : "all clear", { warn: mine.length > 0 });
      this.alertsNote.textContent = mine.length ? "" : "No open alerts.";
    } else {
      setKpi(this.kpis, "alerts", "not available", "alert acknowledgement is not on this gateway", { available: false });
      this.alertsNote.textContent = "Recent alerts (acknowledging is not available on this gateway):";
    }
    replace(this.alertsList, mine.slice(0, SHOWN_ALERTS).map((alert) => this.alertItem(alert, lifecycle)));
    this.onAlerts(mine);
  }

  alertItem(alert, lifecycle) {
    const data = alert.data || {};
    const room = alert.room_id ? this.roomOf(alert.room_id) : null;
    const where = room ? room.name || room.id : alert.room_id || "site";
    const message = data.message || data.rule || "alert";
    const status = h("p", { class: "note", role: "status" });
    const item = h(
      "li",
      { "data-severity": data.severity || "warning", "data-seq": alert.seq },
      h("div", {}, h("strong", {}, `${data.severity === "info" ? "Note" : "Warning"} · ${where}`)),
      h("div", {}, message),
      h("div", { class: "when" }, when(alert.at)),
      status,
    );
    if (lifecycle) {
      const button = h(
        "button",
        { type: "button", class: "secondary", "aria-label": `Acknowledge: ${message}` },
        "Acknowledge",
      );
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await api.post(`v1/alerts/${alert.seq}/ack`);
          status.textContent = "Acknowledged.";
          this.alertsChanged();
        } catch (error) {
          button.disabled = false;
          status.textContent = `Not acknowledged: ${error.status === 403 ? "needs an operator key" : error.summary}.`;
        }
      });
      item.append(button);
    }
    return item;
  }
}
