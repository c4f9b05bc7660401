"""Saved state moved to the current device id scheme (`devices.identity.ID_SCHEME`).

Before scheme 2 an auto-registered device's id was its plain topic name (`pir-1`,
whatever the room); now it is `<room>.<name>` (`orion.pir-1`). A store written
before still loads: on the first start, what room states say per device (lights,
doors, locks, presence), manual-override claims and rule memory's offline times
move to the new ids, and the moved room states are written back, with the scheme
number in the snapshot, before ingest starts. Readings already in the history
keep the device id they were recorded under.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from devices import identity
from gateway.codec import dumps
from gateway.config import Settings
from gateway.logs import kv
from gateway.storage.open_stores import StateStore
from rules.room_model import RoomState, rename_devices

log = logging.getLogger("officegw.migrations")


def migrate_device_ids(
    store: StateStore, saved: dict[str, Any], states: dict[str, RoomState], settings: Settings, now: float
) -> dict[str, RoomState]:
    """The room states under current device ids; `saved` (the snapshot) is updated
    in place, and both are written back to `store`."""
    configured = {device.id for device in settings.site.devices}
    rename = identity.legacy_renamer(configured)
    zone = ZoneInfo(settings.site.timezone)
    migrated = {
        room_id: rename_devices(state, partial(rename, room_id), now, zone=zone)
        for room_id, state in states.items()
    }
    changed = [(room_id, dumps(state)) for room_id, state in migrated.items() if state is not states[room_id]]

    documents: dict[str, Any] = {"device_id_scheme": identity.ID_SCHEME}
    actuator = saved.get("actuator")
    if isinstance(actuator, dict):
        claims = actuator.get("claims", {})
        actuator["claims"] = {
            rename(str(claim.get("room_id", "")), device) if isinstance(claim, dict) else device: claim
            for device, claim in claims.items()
        }
        # Debounce times carry no room: those of auto-registered devices are dropped.
        actuator["last_switch"] = {
            device: at for device, at in actuator.get("last_switch", {}).items() if device in configured
        }
        documents["actuator"] = actuator
    memory = saved.get("rule_memory")
    if isinstance(memory, dict) and isinstance(memory.get("offline"), dict):
        memory["offline"] = {
            room_id: {rename(room_id, device): at for device, at in devices.items()}
            for room_id, devices in memory["offline"].items()
        }
        documents["rule_memory"] = memory
    saved["device_id_scheme"] = identity.ID_SCHEME

    if changed:
        store.commit((), (), changed, now)
    store.save_snapshot(documents, now)
    log.info(kv("device ids migrated", scheme=identity.ID_SCHEME, room_states=len(changed)))
    return migrated
