"""Who a native device is: valid topic levels, and the ids of auto-registered devices.

A native device is its `<device>` level *within its room*: `office/hq/2/orion/pir-1`
and `office/hq/3/kitchen-3/pir-1` are two devices. A device the site config lists
keeps its configured id (and counts only on its own room's topic); a device
registered on first sight gets the id `<room>.<device>` (`orion.pir-1`): readable,
URL-safe, the same after every restart, and never shared by two rooms.

Room ids are site-wide (as in the config): a topic naming a known room counts only
under that room's building and floor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

# A topic level (building, floor, room, device): the characters of a config
# identifier, at most 64 of them, starting with a letter or digit, and no `..`.
SEGMENT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
_SEGMENT = re.compile(SEGMENT_PATTERN)

# Separates room and device in an auto-registered device's id.
SEPARATOR = "."

# Version of the id scheme kept in the snapshot; stores without it hold the
# plain device names of earlier versions (see `legacy_renamer`).
ID_SCHEME = 2


def valid_segment(text: str) -> bool:
    return _SEGMENT.fullmatch(text) is not None and ".." not in text


def invalid_segment(levels: dict[str, str]) -> str | None:
    """The first of the named topic levels that is not a valid id, described; None if all are."""
    for name, text in levels.items():
        if not valid_segment(text):
            return f"{name} {text[:80]!r} is not a valid id (letters, digits, _ . : -; at most 64; no '..')"
    return None


def auto_device_id(room_id: str, name: str) -> str:
    """The id of a device registered on first sight as `name` in room `room_id`."""
    return f"{room_id}{SEPARATOR}{name}"


def legacy_renamer(configured: Collection[str]) -> Callable[[str, str], str]:
    """`(room, device) -> id` for device ids saved before ids were per room: a
    configured device keeps its id; any other was an auto-registered device saved
    under its plain name and becomes `<room>.<name>`. Ids already of that form are
    kept, so running it twice changes nothing."""

    def rename(room_id: str, device_id: str) -> str:
        if device_id in configured or device_id.startswith(room_id + SEPARATOR):
            return device_id
        return auto_device_id(room_id, device_id)

    return rename
