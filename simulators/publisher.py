"""Replay a `VirtualFloor` over MQTT in real time: the simulators' only I/O edge.

paho types stay in this module. The floor's command topics (`/set`, and `cmnd/...`
for Tasmota devices and `<prefix>/rpc` for Shelly devices on a mixed floor) are
subscribed too, so a light the gateway switches off reports OFF, as a real device
would.

    python -m simulators.publisher --host 127.0.0.1 --port 1883 --time-scale 60
    python -m simulators.publisher --dialects mixed --print-site   # the site config to map it
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from paho.mqtt.client import Client, ConnectFlags, MQTTMessage, MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simulators.dialect_devices import MIXES, retained
from simulators.floor import Message, VirtualFloor

log = logging.getLogger(__name__)


def run_floor(
    floor: VirtualFloor,
    host: str,
    port: int,
    *,
    mqtt5: bool = True,
    stop: threading.Event,
    duration: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    tick: float = 0.2,
    progress_every: float = 5.0,
    connect_timeout: float = 10.0,
) -> int:
    """Publish until `stop` is set or `duration` real seconds pass; return messages sent.

    Availability is published retained ("online" at start, "offline" on a clean stop).
    Raises OSError / ConnectionError when the broker cannot be reached or refuses us.
    """
    commands: queue.SimpleQueue[Message] = queue.SimpleQueue()
    client = _connect(floor, host, port, mqtt5, commands, connect_timeout)
    sent, last = 0, None
    started = reported = time.time()
    try:
        # Devices that map themselves say what they are first (retained).
        for topic, payload in floor.announcements():
            last = client.publish(topic, payload, qos=1, retain=True)
            sent += 1
        while True:
            now = time.time()
            batch = floor.step(now)
            while not commands.empty():
                batch += floor.command(*commands.get_nowait(), now)
            for topic, payload in batch:
                last = client.publish(topic, payload, qos=1, retain=retained(topic))
            sent += len(batch)
            if on_progress is not None and now - reported >= progress_every:
                on_progress(sent)
                reported = now
            if duration is not None and now - started >= duration:
                break
            if stop.wait(tick):
                break
    finally:
        for topic, payload in floor.availability_messages("offline"):
            last = client.publish(topic, payload, qos=1, retain=True)
        _drain(last, timeout=5.0)
        client.disconnect()
        client.loop_stop()
    if on_progress is not None:
        on_progress(sent)
    return sent


def _connect(
    floor: VirtualFloor,
    host: str,
    port: int,
    mqtt5: bool,
    commands: queue.SimpleQueue[Message],
    timeout: float,
) -> Client:
    protocol = MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311
    client_id = f"officegw-sim-{floor.building}-{floor.floor}-{uuid.uuid4().hex[:8]}"
    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if mqtt5 else True,
    )
    client.max_inflight_messages_set(100)  # localhost round trips are short; keep the pipe full
    command_topics = [(topic, 1) for topic in floor.command_topics()]
    ready = threading.Event()
    refused: list[str] = []

    def on_socket_open(_c: Client, _u: Any, sock: Any) -> None:
        # paho never sets TCP_NODELAY; without it small QoS 1 publishes wait on Nagle.
        with contextlib.suppress(OSError, AttributeError):  # TLS/websocket wrappers may refuse
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def on_connect(c: Client, _u: Any, _f: ConnectFlags, rc: ReasonCode, _p: Properties | None) -> None:
        if rc.is_failure:
            refused.append(str(rc))
        else:
            c.subscribe(command_topics)  # again on every reconnect
        ready.set()

    def on_message(_c: Client, _u: Any, msg: MQTTMessage) -> None:
        try:
            commands.put((msg.topic, bytes(msg.payload)))
        except UnicodeDecodeError:  # a non-UTF-8 topic is no command of ours
            log.warning("ignored command on undecodable topic %r", msg._topic[:80])

    client.on_socket_open, client.on_connect, client.on_message = (
        on_socket_open,
        on_connect,
        on_message,
    )
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not ready.wait(timeout) or refused:
        client.loop_stop()
        client.disconnect()
        raise ConnectionError(f"MQTT broker {host}:{port}: {refused[0] if refused else 'no CONNACK'}")
    return client


def _drain(last: MQTTMessageInfo | None, timeout: float) -> None:
    """Wait for the last publish: paho sends in order, so the ones before it went out too."""
    if last is None:
        return
    try:
        last.wait_for_publish(timeout)
    except RuntimeError as exc:  # queue full or connection gone: nothing left to wait for
        log.warning("not all messages were delivered: %s", exc)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m simulators.publisher",
        description="Simulate one office floor (people, PIR, env sensors, lights, counters, "
        "doors, badge readers) and publish its devices over MQTT, in the native dialect or, "
        "with --dialects mixed, partly as Zigbee2MQTT, Tasmota and Shelly devices.",
    )
    p.add_argument("--host", default="127.0.0.1", help="MQTT broker host (default: %(default)s)")
    p.add_argument("--port", type=int, default=1883, help="MQTT broker port (default: %(default)s)")
    p.add_argument("--building", default="hq", help="building id (default: %(default)s)")
    p.add_argument("--floor", default="2", help="floor id (default: %(default)s)")
    p.add_argument("--rooms", type=int, default=12, help="rooms on the floor (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per real second; 60 makes a meeting last 30-60 s (default: %(default)s)",
    )
    p.add_argument("--prefix", default="office", help="topic prefix (default: %(default)s)")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many real seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--dialects",
        choices=MIXES,
        default="native",
        help="native: every device on the native topics; mixed: some rooms' sensors, locks and "
        "lights speak Zigbee2MQTT, Tasmota or Shelly (--print-site shows the mapping) (default: %(default)s)",
    )
    p.add_argument("--mqtt311", action="store_true", help="speak MQTT 3.1.1 instead of 5")
    p.add_argument(
        "--print-site",
        action="store_true",
        help="print the floor's site rooms and devices as JSON and exit",
    )
    args = p.parse_args(argv)
    if args.rooms < 1 or args.time_scale <= 0:
        p.error("--rooms must be >= 1 and --time-scale > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    floor = VirtualFloor(
        args.building,
        args.floor,
        args.rooms,
        args.seed,
        args.time_scale,
        args.prefix,
        dialects=args.dialects,
    )
    if args.print_site:
        site = {"rooms": floor.site_rooms(), "devices": floor.site_devices()}
        sys.stdout.write(orjson.dumps(site, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()

    def progress(sent: int) -> None:
        rate = sent / max(time.monotonic() - started, 1e-9)
        occupied = len(floor.occupied_rooms())
        print(
            f"sent {sent} messages ({rate:.1f}/s), {occupied}/{len(floor.rooms)} rooms occupied",
            flush=True,
        )

    topic = floor.topic("<room>", "<device>")
    print(
        f"simulating {len(floor.rooms)} rooms on {args.host}:{args.port} as {topic}, "
        f"time scale {args.time_scale:g}; Ctrl-C stops",
        flush=True,
    )
    try:
        sent = run_floor(
            floor,
            args.host,
            args.port,
            mqtt5=not args.mqtt311,
            stop=stop,
            duration=args.duration,
            on_progress=progress,
        )
    except (OSError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"stopped after {sent} messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
