"""The stores a gateway opens, from its config: the one place that decides what lives where.

Without `storage.url`: everything in the SQLite file at `storage.path`, as always.

With `storage.url` (PostgreSQL), the shared stores hold what the whole campus must
agree on: bookings, events (and the audit log), alert states, webhooks, and each
shard's room states, device states and snapshot. Readings stay in the SQLite file
(and InfluxDB, when exported): telemetry is most of the volume, is only ever asked
for per room, and belongs to the shard that ingests it; a per-shard file keeps a
campus's write load off the shared database. The file also keeps its copy of the
events and room states (committed with the readings, first; see
gateway/storage/shared_sink.py), so it stays a complete journal of the shard:
reports read it, and the shared store catches up from it at start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gateway.config import ConfigError, Settings
from gateway.logs import kv
from gateway.storage.alert_store import AlertStore
from gateway.storage.bookings_store import BookingStore, SqlBookingStore, SqliteBookingStore
from gateway.storage.event_numbering import first_number_after, mark_clean_end, take_clean_end
from gateway.storage.postgres_store import BuildingOf, PostgresStore, ShardConflict, StoreError, redacted
from gateway.storage.records import Reading, StoredEvent
from gateway.storage.shared_sink import SharedSink
from gateway.storage.sql import Sql
from gateway.storage.sqlite_store import Store
from gateway.storage.webhook_store import WebhookStore

log = logging.getLogger("officegw.storage")

Event = tuple[int, float, str, str | None, dict[str, Any]]


class StateStore(Protocol):
    """Where a gateway's events, room states, device states and snapshot are kept: its
    SQLite `Store`, or the shared `PostgresStore`."""

    def commit(
        self,
        readings: Sequence[Reading],
        events: Sequence[tuple[int, StoredEvent]],
        room_states: Iterable[tuple[str, bytes]],
        at: float,
        device_states: Iterable[tuple[str, str, bytes]] = (),
    ) -> None: ...

    def save_snapshot(self, documents: dict[str, Any], at: float) -> None: ...

    def load_snapshot(self) -> dict[str, Any]: ...

    def snapshot_entry(self, key: str) -> Any: ...

    def room_states(self) -> dict[str, Any]: ...

    def device_states(self) -> dict[str, tuple[str, Any]]: ...

    def last_event_seq(self) -> int: ...

    def recent_events(self, limit: int) -> list[Event]: ...

    def event(self, seq: int) -> Event | None: ...

    def events_after(self, after: int, before: int, limit: int) -> list[Event]: ...

    def sql(self) -> AbstractContextManager[Sql]: ...

    def sql_transaction(self) -> AbstractContextManager[Sql]: ...


@dataclass
class Stores:
    # The SQLite file: readings always; everything else too without a shared store.
    history: Store
    # Events, room and device states, the snapshot: `history` or `shared`.
    state: StateStore
    # The PostgreSQL store (storage.url), None without one.
    shared: PostgresStore | None
    bookings: BookingStore
    webhooks: WebhookStore
    alerts: AlertStore
    # Hands each batch the history writer committed on to `shared` (None without one).
    sink: SharedSink | None

    def take_numbering(self) -> int:
        """The number after which this run numbers its events (see
        gateway/storage/event_numbering.py); notes the run as under way, so that a
        crash leaves the next run a gap."""
        newest = self.history.last_event_seq()
        clean_end = take_clean_end(self.history)
        if self.shared is not None:
            newest = max(newest, self.shared.last_event_seq())
            # The file's note counts for a shard the shared store never saw run.
            clean_end = take_clean_end(self.shared, unrecorded=clean_end)
        after = first_number_after(newest, clean_end)
        if after != newest:
            log.warning(
                kv(
                    "the last run did not stop cleanly: event numbers resume past a gap, so that none "
                    "it may have given out is given to another event",
                    newest_stored=newest,
                    next_event=after + 1,
                )
            )
        return after

    def mark_numbering_end(self, last: int) -> None:
        """Notes a clean stop after which `last` was the last event number given out."""
        if self.shared is not None:
            mark_clean_end(self.shared, last)
        mark_clean_end(self.history, last)

    def close(self) -> None:
        self.bookings.close()
        if self.shared is not None:
            self.shared.close()
        self.history.close()


def shard_buildings(settings: Settings) -> list[str]:
    """The buildings this gateway serves: `gateway.buildings`, or every building of its
    site config when unset."""
    if settings.gateway.buildings:
        return sorted(set(settings.gateway.buildings))
    return sorted({room.building for room in settings.site.rooms})


def shard_rooms(settings: Settings) -> frozenset[str]:
    buildings = set(shard_buildings(settings))
    return frozenset(room.id for room in settings.site.rooms if room.building in buildings)


def event_building(settings: Settings) -> BuildingOf:
    """The building of an event the SQLite file kept (it keeps none), as the gateway
    gives it live (`Gateway._place`): its room's, from the site config; for a room
    the config does not name (registered from its topic at run time), the shard's
    building when `gateway.buildings` names exactly one (it then subscribes to that
    building's topics only), else None; for an event of no room, the `building` in
    its data (a report archived)."""
    rooms = {room.id: room.building for room in settings.site.rooms}
    served = set(settings.gateway.buildings)
    only = next(iter(served)) if len(served) == 1 else None

    def building_of(room: str | None, data: Mapping[str, Any]) -> str | None:
        if room is None:
            building = data.get("building")
            return building if isinstance(building, str) else None
        return rooms.get(room, only)

    return building_of


def open_shared(settings: Settings) -> PostgresStore:
    """The shared store alone (migrated), as a process that ingests nothing (an API
    replica) opens it: no claim on buildings, no catch-up. Needs `storage.url`.

    A database that cannot be used (unreachable, refused credentials, no such
    database, written by a newer officegw) is a ConfigError naming `storage.url`."""
    url = settings.storage.url
    if url is None:
        raise ConfigError("config", ["storage.url: required for the shared store (postgresql://...)"])
    try:
        return PostgresStore(url, settings.gateway.id, pool_size=settings.storage.pool_size)
    except StoreError as exc:
        raise ConfigError(redacted(url), [f"storage.url: {exc}"]) from None


def open_stores(settings: Settings, *, now: float | None = None) -> Stores:
    """Opens (and migrates) the gateway's stores. With `storage.url`: claims this
    shard's buildings (ConfigError naming `gateway.buildings` when another shard holds
    one) and catches the shared store up from the SQLite file."""
    history = Store(Path(settings.storage.path))
    if settings.storage.url is None:
        return Stores(
            history=history,
            state=history,
            shared=None,
            bookings=SqliteBookingStore(Path(settings.storage.path)),
            webhooks=WebhookStore(history),
            alerts=AlertStore(history),
            sink=None,
        )
    try:
        shared = open_shared(settings)
    except BaseException:
        history.close()
        raise
    try:
        _claim(settings, shared, time.time() if now is None else now)
        shared.catch_up(history, event_building(settings))
    except BaseException:
        shared.close()
        history.close()
        raise
    return Stores(
        history=history,
        state=shared,
        shared=shared,
        bookings=SqlBookingStore(shared, shard_rooms(settings)),
        webhooks=WebhookStore(shared),
        alerts=AlertStore(shared),
        sink=SharedSink(shared),
    )


def _claim(settings: Settings, shared: PostgresStore, now: float) -> None:
    buildings = shard_buildings(settings)
    try:
        shared.claim(buildings, now)
    except ShardConflict as exc:
        claimed = "; ".join(
            f"building {b!r} is served by shard {s!r}" for b, s in sorted(exc.claimed.items())
        )
        if settings.gateway.buildings:
            problem = f"gateway.buildings: {claimed} (this is shard {settings.gateway.id!r})"
        else:
            problem = (
                f"gateway.buildings: not set, so shard {settings.gateway.id!r} claims every building of "
                f"its site, but {claimed}; list this shard's buildings"
            )
        raise ConfigError(redacted(settings.storage.url or ""), [problem]) from None
