"""Where a device's memory goes: the gateway in process, fed the memory benchmark's
devices, with tracemalloc and object counts before and after.

    python benchmarks/memory_profile.py            # 2,000 rooms, 20,000 devices
    python benchmarks/memory_profile.py --top 40 --group filename

Builds the gateway as `officegw run` does (the same settings as
benchmarks/memory.py, a transport in memory instead of MQTT, the history in a
temporary SQLite file), starts tracing once it is ready, hands it every
device's messages (two rounds), waits until the history has committed them and
compares: bytes a device by source line (or file), and the object types whose
counts grew, per device. What `benchmarks/memory.py` measures as RSS also holds
the allocator's overhead and SQLite's page cache; this says what Python holds.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.memory import device_messages
from gateway.config import load_settings
from gateway.mqtt.transport import ConnectionListener, InboundMessage, MessageHandler
from gateway.runtime.gateway import Gateway
from simulators.loadgen import rooms_for


class MemoryTransport:
    """Enough of a `Transport` for the gateway: delivers what it is given, drops what
    it publishes, acknowledges nothing (there is no broker)."""

    def __init__(self) -> None:
        self._on_message: MessageHandler | None = None
        self.connected = True
        self.receiving = True

    def start(self, on_message: MessageHandler, on_connection: ConnectionListener | None = None) -> None:
        self._on_message = on_message
        if on_connection is not None:
            on_connection(True)

    def deliver(self, message: InboundMessage) -> None:
        assert self._on_message is not None
        self._on_message(message)

    def pause(self) -> None:
        pass

    def stop(self) -> None:
        self.connected = False

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        pass

    def subscribe(self, topics: Collection[str]) -> None:
        pass

    def unsubscribe(self, topics: Collection[str]) -> None:
        pass

    def subscriptions_pending(self) -> int:
        return 0

    def ack_many(self, acks: Any) -> None:
        pass

    def broker_stats(self) -> None:
        return None


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sqlite_mb() -> float:
    """What SQLite's allocator holds in this process (page caches, statements)."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    except OSError:
        return float("nan")
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return float(lib.sqlite3_memory_used()) / 2**20


def type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=2_000)
    parser.add_argument("--devices-per-room", type=int, default=10)
    parser.add_argument("--top", type=int, default=30, help="lines (or files) to print (default 30)")
    parser.add_argument("--group", choices=("lineno", "filename", "traceback"), default="lineno")
    parser.add_argument("--rss-only", action="store_true", help="no tracing: RSS and SQLite only")
    parser.add_argument(
        "--reference", action="store_true", help="the same number of messages from 10 rooms' devices"
    )
    args = parser.parse_args()
    devices = args.rooms * args.devices_per_room
    rooms = rooms_for(args.rooms)
    messages = device_messages(rooms, args.devices_per_room, rounds=2)
    if args.reference:
        # memory.py's reference: as many messages, from the devices of 10 rooms only.
        few = 10 * args.devices_per_room
        messages = device_messages(rooms[:10], args.devices_per_room, rounds=len(messages) // few)
        devices = few
    with tempfile.TemporaryDirectory(prefix="officegw-memprof-") as tmp:
        settings = load_settings(
            None,
            {
                "gateway": {"id": "memory-profile", "log_level": "WARNING"},
                "mqtt": {"topic_prefix": "office"},
                "storage": {"path": str(Path(tmp) / "officegw.db")},
                "registry": {"max_auto_devices": max(devices, 10_000)},
                "quality": {"max_rate": 1_000, "burst": 1_000},
                "site": {"rooms": rooms},
            },
        )
        transport = MemoryTransport()
        gateway = Gateway(settings, transport=transport)
        gateway.start()
        try:
            time.sleep(1.0)
            gc.collect()
            before_types = type_counts()
            rss_before, sqlite_before = rss_mb(), sqlite_mb()
            if not args.rss_only:
                tracemalloc.start(25 if args.group == "traceback" else 1)
            before = tracemalloc.take_snapshot() if not args.rss_only else None
            for topic, payload in messages:
                transport.deliver(InboundMessage(topic, payload, 1, False, None))
            # Until the history has committed it all (its buffers are not a device's cost).
            gateway._history.flush(120)
            time.sleep(1.0)
            gc.collect()
            after = tracemalloc.take_snapshot() if not args.rss_only else None
            after_types = type_counts()
            rss_after, sqlite_after = rss_mb(), sqlite_mb()
            tracemalloc.stop()
            gc.collect()
            untraced = rss_mb()
            trimmed = float("nan")
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL("libc.so.6").malloc_trim(0)
                trimmed = rss_mb()
            print(f"RSS without tracing {untraced:.1f} MB; after malloc_trim {trimmed:.1f} MB")
        finally:
            gateway.stop()
    print(
        f"RSS {rss_before:.1f} -> {rss_after:.1f} MB ({(rss_after - rss_before) * 2**20 / devices:.0f} B a "
        f"device); SQLite {sqlite_before:.1f} -> {sqlite_after:.1f} MB"
    )
    if before is None or after is None:
        return 0
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(filters).compare_to(before.filter_traces(filters), args.group)
    total = sum(s.size_diff for s in stats)
    print(f"{len(messages)} messages, {devices} devices: {total / devices:.0f} bytes a device (Python)")
    for stat in stats[: args.top]:
        where = (
            stat.traceback.format()[-1].strip()
            if args.group != "traceback"
            else "\n    ".join(stat.traceback.format()[-6:])
        )
        print(f"{stat.size_diff / devices:8.1f} B/dev {stat.count_diff / devices:6.2f} obj/dev  {where}")
    print("\nobject types grown, per device:")
    grown = Counter({k: after_types[k] - before_types.get(k, 0) for k in after_types})
    for name, n in grown.most_common(args.top):
        if n <= 0:
            break
        print(f"{n / devices:6.2f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
