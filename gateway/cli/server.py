"""Running the API (and with it the gateway) under uvicorn, in the foreground or a thread."""

from __future__ import annotations

import signal
import threading
import time

import uvicorn
from fastapi import FastAPI

from api.app import end_streams


def uvicorn_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # Our own logging setup stays in charge; the access log costs ~24 % of
        # throughput and /metrics already counts requests.
        log_config=None,
        access_log=False,
        lifespan="on",
    )


def serve(app: FastAPI, host: str, port: int) -> None:
    """Blocks until SIGINT/SIGTERM; uvicorn then runs the lifespan shutdown."""
    # uvicorn re-raises the stop signal after its graceful shutdown, which would
    # kill the process with -SIGTERM; a stop we asked for is a clean exit (0).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    uvicorn.Server(uvicorn_config(app, host, port)).run()


class ServerThread:
    """uvicorn in a background thread, for the demo and tests; `stop` shuts it down cleanly."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._app = app
        self._server = uvicorn.Server(uvicorn_config(app, host, port))
        # uvicorn leaves signals alone off the main thread; the owner calls `stop`.
        self._thread = threading.Thread(target=self._server.run, name="officegw-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"API server on {self.host}:{self.port} failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"API server on {self.host}:{self.port} not up within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        end_streams(self._app)
        self._server.should_exit = True
        self._thread.join(timeout)
