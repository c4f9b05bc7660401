"""Restart to ready: `officegw run` with 2,000 rooms and 20,000 devices in its store.

A gateway is filled (2,000 configured rooms, 20,000 native devices reporting once)
and stopped; then it is started again, timed from the process's start to the first
`/readyz` answering 200 (state restored, broker connected and subscribed). The
references, measured in the same run: the same start with an empty store (what the
process, imports and config cost) and the bare interpreter importing the gateway's
modules.

Also reported: the CPU time the gateway process used until ready (`ready_cpu_s`,
user + system, all threads), which a busy machine inflates far less than the wall
clock. The gateway runs with Python's bytecode cache on, as an installed one does: an
environment with PYTHONDONTWRITEBYTECODE set (such as a CI sandbox) would otherwise
compile every module from source at every start (~0.3 s of CPU more), which no
deployment pays. `--gateway-root DIR` runs the gateway from another checkout (the
same benchmark against the code before a change).

Goal (issue 17): ready in under 1 s. Prints one JSON line: ready_s, ...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import GatewayProcess, _metric, _wait, progress, publish_backlog
from benchmarks.memory import device_messages
from simulators.broker import BrokerProcess, free_port, start_mosquitto
from simulators.loadgen import rooms_for

PREFIX = "office"


def config_for(
    tmp: Path, broker: BrokerProcess, rooms: list[dict[str, object]], name: str
) -> tuple[Path, int]:
    port = free_port()
    config = tmp / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"restart-{name}-{os.getpid()}", "log_level": "WARNING"},
                "mqtt": {"url": broker.url, "topic_prefix": PREFIX},
                "api": {"host": "127.0.0.1", "port": port},
                "storage": {"path": str(tmp / f"{name}.db")},
                "registry": {"max_auto_devices": 100_000},
                "quality": {"max_rate": 1_000, "burst": 1_000},
                "site": {"rooms": rooms},
            }
        )
    )
    return config, port


ROOT = Path(__file__).resolve().parents[1]


def gateway_env(root: Path) -> dict[str, str]:
    """The benchmark's environment for a gateway run from `root`, bytecode cache on."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(root)
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_to_ready(config: Path, port: int, root: Path = ROOT) -> tuple[float, float]:
    """(Seconds from starting the process to /readyz 200, CPU seconds it used until
    then); the process is stopped after."""
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=root,
        env=gateway_env(root),
    )
    try:
        while True:
            try:
                if http.get("/readyz").status_code == 200:
                    return time.perf_counter() - started, cpu_seconds(proc.pid)
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}")
            if time.perf_counter() - started > 120:
                raise TimeoutError("not ready within 120 s")
            time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(15)
        http.close()


def import_time(root: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import gateway.cli.assembly, api.app"],
        check=True,
        cwd=root,
        env=gateway_env(root),
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=2_000, help="rooms (default 2000)")
    parser.add_argument("--devices-per-room", type=int, default=10, help="native devices a room (default 10)")
    parser.add_argument("--runs", type=int, default=5, help="timed restarts of each kind (default 5)")
    parser.add_argument(
        "--gateway-root", type=Path, default=ROOT, help="checkout to run the gateway from (default: this one)"
    )
    args = parser.parse_args()
    rooms = rooms_for(args.rooms)
    devices = args.rooms * args.devices_per_room
    with tempfile.TemporaryDirectory(prefix="officegw-restart-") as tmp_name, start_mosquitto() as broker:
        tmp = Path(tmp_name)
        full, full_port = config_for(tmp, broker, rooms, "full")
        empty, empty_port = config_for(tmp, broker, rooms, "empty")
        gateway = GatewayProcess(full, full_port, root=args.gateway_root, env=gateway_env(args.gateway_root))
        gateway.start()
        try:
            gateway.wait_http()
            _wait(lambda: gateway.http.get("/readyz").status_code == 200, 60, "gateway ready")
            messages = device_messages(rooms, args.devices_per_room, rounds=1)
            progress(f"filling the store: {len(messages)} messages from {devices} devices")
            publish_backlog(broker, messages, 2)
            _wait(
                lambda: (
                    _metric(gateway.http, "officegw_messages_received_total") >= len(messages)
                    and _metric(gateway.http, "officegw_ingest_uncommitted_messages") == 0
                ),
                600,
                "the store filled",
            )
        finally:
            gateway.stop()
        progress("timing restarts")
        full_times, empty_times, imports, full_cpu, empty_cpu = [], [], [], [], []
        for run in range(args.runs):
            wall, cpu = time_to_ready(full, full_port, args.gateway_root)
            full_times.append(wall)
            full_cpu.append(cpu)
            wall, cpu = time_to_ready(empty, empty_port, args.gateway_root)
            empty_times.append(wall)
            empty_cpu.append(cpu)
            imports.append(import_time(args.gateway_root))
            progress(
                f"run {run + 1}: full {full_times[-1]:.2f} s ({full_cpu[-1]:.2f} s CPU), "
                f"empty {empty_times[-1]:.2f} s ({empty_cpu[-1]:.2f} s CPU)"
            )
    result = {
        "benchmark": "restart",
        "rooms": args.rooms,
        "devices": devices,
        "runs": args.runs,
        "ready_s": round(statistics.median(full_times), 3),
        "ready_s_min": round(min(full_times), 3),
        "ready_s_max": round(max(full_times), 3),
        "ready_cpu_s": round(statistics.median(full_cpu), 3),
        "empty_store_ready_s": round(statistics.median(empty_times), 3),
        "empty_store_ready_cpu_s": round(statistics.median(empty_cpu), 3),
        "import_s": round(statistics.median(imports), 3),
        "goal_s": 1.0,
        "gateway_root": str(args.gateway_root),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
