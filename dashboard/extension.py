"""The memdash Flask extension: what one app owns (its Socket.IO server, the one sampler and
the scenario worker pool), kept in ``app.extensions["memdash"]``.

The web modules (api, lab, events) reach it through :func:`get_memdash`; app.py only
assembles. Nothing runs until :meth:`Memdash.start` (the CLI calls it; the first Socket.IO
connection does too).
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_socketio import SocketIO

from .sampler import Sampler
from .workers import WorkerPool


class Memdash:
    """``Memdash(app)`` or ``Memdash().init_app(app)``; reads its settings from app.config
    (see ``dashboard.app.DEFAULTS``)."""

    socketio: SocketIO
    sampler: Sampler
    workers: WorkerPool

    def __init__(self, app: Flask | None = None):
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        config = app.config
        self.socketio = SocketIO(app, async_mode="threading")
        self.sampler = Sampler(
            interval=config["INTERVAL"],
            detail_interval=config["DETAIL_INTERVAL"],
            history_seconds=config["HISTORY_SECONDS"],
            linger=config["LINGER"],
            emit=self._emit,
        )
        self.workers = WorkerPool(
            sampler=self.sampler,
            emit=self._emit,
            max_runs=config["MAX_RUNS"],
            memory_fraction=config["RUNS_MEMORY_FRACTION"],
        )
        for pid in config["PINNED_PIDS"]:
            self.sampler.keep(pid, False, owner="cli")
        app.extensions["memdash"] = self

    def _emit(self, event: str, payload: dict | list, to: str | None) -> None:
        """The sampler's and the pool's way out: ``to`` is a socket id, or None for all."""
        if isinstance(payload, list):  # batches (Sampler.flush): one Socket.IO argument each
            payload = tuple(payload)  # python-socketio sends a tuple as several arguments
        self.socketio.emit(event, payload, to=to)

    def start(self) -> None:
        """Start sampling and the run monitor (safe to call again)."""
        self.sampler.start()
        self.workers.start()

    def stop(self) -> None:
        self.workers.stop_all(reason="memdash shut down")
        self.workers.close()
        self.sampler.stop()


def get_memdash() -> Memdash:
    """The extension of the app handling the current request or Socket.IO event."""
    return current_app.extensions["memdash"]
