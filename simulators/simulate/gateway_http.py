"""What the simulator asks the gateway over HTTP: its metrics (how far it got), events
(occupancy), devices (data-quality flags), bookings. httpx types stay in this module.

Only documented REST paths and metrics are used (README "REST API", "Configuration"),
so a simulation drives any officegw a booking system or dashboard could reach.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from simulators.simulate.truth import iso


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# Metrics read on every sync, by exact name (labels kept in the key where they matter).
_WANTED = (
    "officegw_messages_processed_total",
    "officegw_commands_sent_total",
    "officegw_clock_seconds",
    "officegw_clock_ticked_seconds",
    "officegw_clock_mode",
    "officegw_mqtt_connects_total",
    "officegw_mqtt_connected",
    "officegw_room_energy_kwh_today",
    "officegw_handler_errors_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
)


class GatewayUnreachable(ConnectionError):
    pass


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The gateway's counters at one moment (`at`: the simulator's monotonic clock)."""

    at: float
    processed: float
    commands_sent: float
    clock: float | None
    ticked: float | None
    device_clock: bool
    connects: float
    connected: bool
    kwh_today: float
    handler_errors: float
    cpu_seconds: float | None
    rss_bytes: float | None
    started: float | None
    rooms_with_energy: int = 0
    missing: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ClockReading:
    """`GET /v1/clock`: the gateway's time and how far it got (`at`: our monotonic clock)."""

    at: float
    gateway: str
    device_clock: bool
    now: float | None
    ticked: float | None
    processed: int
    commands_sent: int


class GatewayHttp:
    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            return self._http.get(path, params=params or None)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(f"{self.base_url}{path}: {exc}") from exc

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return True
            time.sleep(0.05)
        return False

    def clock(self) -> ClockReading:
        response = self._get("/v1/clock")
        if response.status_code != 200:
            raise GatewayUnreachable(
                f"{self.base_url}/v1/clock: HTTP {response.status_code} {response.text[:200]}"
            )
        body = response.json()
        ticked = body.get("ticked_at")
        return ClockReading(
            at=time.monotonic(),
            gateway=str(body["gateway"]),
            device_clock=body["mode"] == "device",
            now=_epoch(body["now"]),
            ticked=_epoch(ticked) if ticked else None,
            processed=int(body["messages_processed"]),
            commands_sent=int(body["commands_sent"]),
        )

    def snapshot(self) -> Snapshot:
        response = self._get("/metrics")
        if response.status_code != 200:
            raise GatewayUnreachable(
                f"{self.base_url}/metrics: HTTP {response.status_code} {response.text[:200]}"
            )
        values: dict[str, float] = {}
        kwh, rooms, device_clock = 0.0, 0, False
        for line in response.text.splitlines():
            if not line or line[0] == "#":
                continue
            name, _, rest = line.partition("{") if "{" in line.split(" ", 1)[0] else line.partition(" ")
            if name not in _WANTED:
                continue
            value = float(line.rsplit(" ", 1)[1])
            if name == "officegw_room_energy_kwh_today":
                kwh += value
                rooms += 1
            elif name == "officegw_clock_mode":
                device_clock = device_clock or 'mode="device"' in rest
            else:
                values[name] = value
        missing = tuple(
            n for n in ("officegw_messages_processed_total", "officegw_clock_seconds") if n not in values
        )
        return Snapshot(
            at=time.monotonic(),
            processed=values.get("officegw_messages_processed_total", 0.0),
            commands_sent=values.get("officegw_commands_sent_total", 0.0),
            clock=values.get("officegw_clock_seconds"),
            ticked=values.get("officegw_clock_ticked_seconds"),
            device_clock=device_clock,
            connects=values.get("officegw_mqtt_connects_total", 0.0),
            connected=values.get("officegw_mqtt_connected", 0.0) == 1.0,
            kwh_today=kwh,
            handler_errors=values.get("officegw_handler_errors_total", 0.0),
            cpu_seconds=values.get("process_cpu_seconds_total"),
            rss_bytes=values.get("process_resident_memory_bytes"),
            started=values.get("process_start_time_seconds"),
            rooms_with_energy=rooms,
            missing=missing,
        )

    def events(self, after: int, kind: str) -> Iterator[dict[str, Any]]:
        """Every event of `kind` after the cursor, oldest first, page by page."""
        while True:
            response = self._get("/v1/events", after=after, kind=kind, limit=1000)
            response.raise_for_status()
            page = response.json()
            yield from page["events"]
            if not page["events"]:
                return
            after = page["next_after"]

    def device(self, device_id: str) -> dict[str, Any] | None:
        response = self._get(f"/v1/devices/{device_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def device_ids(self) -> set[str]:
        response = self._get("/v1/devices")
        response.raise_for_status()
        return {device["id"] for device in response.json()["devices"]}

    def rooms(self) -> list[dict[str, Any]]:
        response = self._get("/v1/rooms")
        response.raise_for_status()
        body = response.json()
        rooms: list[dict[str, Any]] = body["rooms"] if isinstance(body, dict) else body
        return rooms

    def book(
        self, room: str, start: float, end: float, *, title: str, organizer: str, external_id: str
    ) -> tuple[str | None, str | None]:
        """(booking id, None), or (None, why the booking API refused)."""
        body = {
            "room_id": room,
            "start": iso(start),
            "end": iso(end),
            "title": title,
            "organizer": organizer,
            "external_id": external_id,
        }
        try:
            response = self._http.post("/v1/bookings", json=body)
        except httpx.TransportError as exc:
            return None, f"gateway unreachable: {exc}"
        if response.status_code in (200, 201):
            return str(response.json()["id"]), None
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:200]
        return None, f"HTTP {response.status_code}: {detail}"

    def booking(self, booking_id: str) -> dict[str, Any] | None:
        response = self._get(f"/v1/bookings/{booking_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
