"""Run amqtt, the pure-Python MQTT 3.1.1 broker, as a standalone process.

This is the fallback broker for machines without mosquitto (`officegw demo`,
tests). It runs in its own process, not in the gateway's event loop, so that
the broker and the gateway never share a GIL or a loop, and so that it can be
stopped, killed and restarted exactly like mosquitto (see `simulators.broker`).

    python -m simulators.amqtt_broker --host 127.0.0.1 --port 1883
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt 0.12 configuration: one anonymous TCP listener, nothing else.

    The plugin map is given explicitly because leaving it out loads amqtt's
    defaults, which include a packet logger (a log line per packet) and a
    $SYS publisher every 20 s that subscribers to `#` would see.
    """
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then shut the broker down cleanly."""
    # Imported here so that `--help` works (and is fast) without amqtt installed.
    from amqtt.broker import Broker  # type: ignore[import-untyped]

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    broker = Broker(broker_config(host, port), loop=loop)
    await broker.start()
    logging.getLogger(__name__).info("amqtt broker listening on %s:%d", host, port)
    try:
        await stop.wait()
    finally:
        await broker.shutdown()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.amqtt_broker",
        description="Run the embedded amqtt MQTT 3.1.1 broker (anonymous, one TCP listener).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=1883, help="TCP port (default: %(default)s)")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level of the broker (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # amqtt logs a line per connection at INFO; its state-machine library is noisier still.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    from amqtt.errors import BrokerError  # type: ignore[import-untyped]

    try:
        asyncio.run(serve(args.host, args.port))
    except (BrokerError, OSError) as exc:  # typically: address already in use
        logging.getLogger(__name__).error("amqtt broker failed to start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
