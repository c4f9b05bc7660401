"""Payload dialects: each module translates one device family's topics and payloads.

Adding a dialect is adding a module and naming it here.
"""

from __future__ import annotations

DIALECTS: frozenset[str] = frozenset({"native", "zigbee2mqtt"})
