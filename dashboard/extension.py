"""The memdash Flask extension: what one app owns (its Socket.IO server, the one sampler and
the scenario worker pool), kept in ``app.extensions["memdash"]``.

The web modules (api, lab, events) reach it through :func:`get_memdash`; app.py only
assembles. Nothing runs until :meth:`Memdash.start` (the CLI calls it; the first Socket.IO
connection does too).
"""

from __future__ import annotations

import logging
import threading
import time

import socketio
from flask import Flask, current_app
from flask_socketio import SocketIO

from . import access, errors, shared_json
from .fanout import Fanout
from .recorder_sink import RecorderSink
from .reporters.sources import HeapSources
from .sampler import Sampler
from .sessions import artefact_dir
from .verdicts import Verdicts
from .workers import WorkerPool

log = logging.getLogger(__name__)


class JsonPacket(socketio.packet.Packet):
    """memdash never sends binary payloads: skip python-socketio's walk of every message
    looking for bytes (it showed in profiles of late joiners' large acks)."""

    uses_binary_events = False
    json = shared_json  # json, plus text encoded once for many viewers (late joiners' backfill)


class Memdash:
    """``Memdash(app)`` or ``Memdash().init_app(app)``; reads its settings from app.config
    (see ``dashboard.app.DEFAULTS``)."""

    socketio: SocketIO
    sampler: Sampler
    workers: WorkerPool
    access: access.Access

    def __init__(self, app: Flask | None = None):
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        config = app.config
        self.access = config["ACCESS"]
        # The guard (access.AccessGuard) refuses foreign origins before engine.io sees them;
        # engine.io's own CORS check is told the same list, so its replies never widen it.
        self.socketio = SocketIO(
            app,
            async_mode="threading",
            serializer=JsonPacket,
            cors_allowed_origins=lambda origin, environ=None: self.access.origin_ok(origin),
        )
        app.wsgi_app = access.AccessGuard(app.wsgi_app, self.access)  # outermost: sees all
        self.fanout = Fanout(self.socketio.server)  # one frame per message, for every viewer
        self.roles: dict[str, str] = {}  # connected socket id -> presenter / audience
        self.view: dict | None = None  # what the presenter shows, relayed to the audience
        self._view_lock = threading.Lock()
        self.sampler = Sampler(
            interval=config["INTERVAL"],
            detail_interval=config["DETAIL_INTERVAL"],
            background_detail_interval=config["BACKGROUND_DETAIL_INTERVAL"],
            history_seconds=config["HISTORY_SECONDS"],
            linger=config["LINGER"],
            max_targets=config["MAX_TARGETS"],
            emit=self._emit,
            corked=self.fanout.corked,  # a tick's messages: one write per viewer
        )
        self.workers = WorkerPool(
            sampler=self.sampler,
            emit=self._emit,
            max_runs=config["MAX_RUNS"],
            memory_fraction=config["RUNS_MEMORY_FRACTION"],
        )
        # The one growth judgement: a sampler sink the pool, the page and /metrics all read.
        self.verdicts = Verdicts(self._emit, is_helper=self._is_helper)
        self.sampler.add_sink(self.verdicts)
        self.workers.growth_of = self.verdicts.growth_of
        self.workers.quiet = self.verdicts.quiet
        self.growth_of = self.verdicts.growth_of
        self.heaps = HeapSources()  # language heaps beyond the lab: `memdash run`, --inspect
        # Recording (the CLI opens the file; test apps record nothing): a sampler sink, and the
        # runs, marks and tool results from the way out below. Artefacts live beside the file.
        self.recorder = config["RECORDER"]
        self.recording: RecorderSink | None = None
        if self.recorder is not None:
            self.recording = RecorderSink(self.recorder)
            self.sampler.add_sink(self.recording)
            self.recorder.on_error = self._recording_failed
            self.workers.keep_snapshots(artefact_dir(self.recorder.path, create=True))
        self.pinned = set(config["PINNED_PIDS"])
        for pid in config["PINNED_PIDS"]:  # --pid (with --children: the tree)
            self.sampler.keep(pid, config["PINNED_CHILDREN"], owner="cli")
        app.extensions["memdash"] = self

    def _emit(self, event: str, payload: dict | list, to: str | list[str] | None) -> None:
        """The sampler's and the pool's way out: ``to`` is a socket id, a list of them, or None
        for all. WebSocket viewers get one frame, built once, written by :class:`Fanout`; the
        others (long-polling, mid-upgrade) the ordinary emit, also encoded once per call."""
        if self.recorder is not None and event in ("run", "mark"):
            self._record(event, payload)
        args = tuple(payload) if isinstance(payload, list) else (payload,)  # batches: one arg each
        rest = self.fanout.send(event, args, to)
        if rest:
            self.socketio.emit(event, args if len(args) != 1 else args[0], to=self._reading(rest))

    def _reading(self, sids: list[str]) -> list[str]:
        """``sids`` without the polling viewers that stopped fetching: an Engine.IO queue (one
        per client, unbounded) holding more than 100 messages (10 s of flushes) is dropped."""
        server, live = self.socketio.server, []
        for sid in sids:
            eio_sid = server.manager.eio_sid_from_sid(sid, "/")
            sock = server.eio.sockets.get(eio_sid) if eio_sid else None
            if sock is None or sock.queue.qsize() <= 100:
                live.append(sid)
                continue
            log.warning("dropping viewer %s: it has not read its last 100 messages", sid)
            # Not eio.disconnect(): it waits for the queue to drain, which never happens.
            sock.close(wait=False, abort=True, reason="stalled: not reading")
        return live

    # -- recording -----------------------------------------------------------------------------

    def _record(self, event: str, payload: dict) -> None:
        if event == "run":
            self.recorder.add_run({**payload, "verdict": payload.get("growth")})
        else:
            self.recorder.add_mark(
                payload["t"], payload["kind"], payload["label"], payload.get("pid")
            )

    def record_tool(self, kind: str, result: dict, artefact: str | None = None) -> None:
        """Keep a tool's result with the session (no-op when not recording)."""
        if self.recorder is not None:
            self.recorder.add_tool_result(
                time.time(), result.get("run_id"), result.get("pid"), kind, result, artefact
            )

    def recording_status(self) -> dict | None:
        return self.recording.status() if self.recording is not None else None

    def _recording_failed(self, message: str) -> None:
        """The disk is full or read-only: recording stops, the dashboard goes on, and every
        viewer is told (the page shows a warning)."""
        log.warning("recording stopped: %s", message)
        self._emit("recording", self.recording_status() or {"error": message}, None)

    def _is_helper(self, pid: int) -> bool:
        """A service a run started for itself (its redis-server), not the run's own code."""
        return any(pid in (s.pid for s in run.services) for run in self.workers.list())

    # -- room mode ---------------------------------------------------------------------------

    def set_view(self, view: dict) -> None:
        with self._view_lock:
            self.view = view

    def shown_pids(self) -> set[int]:
        """What the presenter shows, so what the audience may watch: the processes on the
        presenter's chart (with the members of a tree shown), every run's processes and the
        command line's --pid."""
        with self._view_lock:
            view = self.view
        pids = set()
        for watch in (view or {}).get("watches", []):
            pids.add(watch["pid"])
            tree = self.sampler.target(watch["pid"], True) if watch.get("children") else None
            if tree is not None:
                pids.update(list(tree.readers))
        for run in self.workers.list():
            shown = run.to_dict()
            pids.add(shown["pid"])
            pids.update(shown.get("extra_pids", []))
            pids.update(p["pid"] for p in shown.get("processes", []))
        return pids | self.pinned

    def check_shown(self, pid: int, role: str) -> None:
        """The audience may look only at what the presenter shows."""
        if role == access.AUDIENCE and pid not in self.shown_pids():
            raise errors.NotShown(f"the presenter does not show pid {pid}")

    def public(self, process: dict) -> dict:
        """A process description as a shared room may see it: secrets in its command line
        masked (the presenter's screen is on a projector too)."""
        if not self.access.shared or not process.get("cmdline"):
            return process
        return {**process, "cmdline": access.mask_cmdline(process["cmdline"])}

    def start(self) -> None:
        """Start sampling and the run monitor (safe to call again)."""
        self.sampler.start()
        self.workers.start()

    def stop(self) -> None:
        self.heaps.close()  # close the inspectors memdash opened
        self.workers.stop_all(reason="memdash shut down")
        self.workers.close()
        self.sampler.stop()
        if self.recorder is not None:
            self.recorder.close()  # writes what is queued, then releases the file


def get_memdash() -> Memdash:
    """The extension of the app handling the current request or Socket.IO event."""
    return current_app.extensions["memdash"]
