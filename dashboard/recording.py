"""Recording a session: :class:`Recorder` writes on its own thread from a queue, so sampling
never waits for the disk. The file format is :mod:`dashboard.recfile`; reading it back is
:class:`dashboard.recorded.Recording`, the session directory :mod:`dashboard.sessions` (both
importable from here too).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from . import __version__, errors
from .recfile import (  # noqa: F401  (re-exported for callers of the whole recording API)
    FIELDS,
    KIB_FIELDS,
    SCHEMA,
    SCHEMA_VERSION,
    BadRecording,
    NewerRecording,
    RecordingLocked,
    _inode,
    _recording_here,
    _registry_lock,
    check_file,
    check_schema,
)
from .recorded import Recording  # noqa: F401
from .recrows import RowWriter
from .sessions import default_session_path, list_sessions, prune, sessions_dir  # noqa: F401

log = logging.getLogger(__name__)


class Recorder:
    """Writes one session to ``path`` on its own thread; every ``add_*`` only enqueues.

    The writer gathers ``commit_every`` seconds of flushes into one transaction (a commit per
    flush cost as much CPU as its samples), so a ``kill -9`` loses at most the last second;
    ``flush()`` and ``close()`` commit at once.
    Batches are stored by reference: do not change them after handing them over (the
    sampler's flush hands over fresh lists). A write error (disk full, read-only disk) stops
    recording: ``error`` says why, ``on_error(message)`` is called once, later calls are
    ignored and what was committed before stays readable.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        interval: float = 0.1,
        started_at: float | None = None,
        on_error: Callable[[str], None] | None = None,
        max_queue: int = 10_000,
        commit_every: float = 1.0,
    ):
        self.path = Path(path)
        self.commit_every = commit_every
        self._urgent = threading.Event()  # a flush() or close() is waiting: commit now
        self.on_error = on_error
        self._lock_fd = -1
        self.max_queue = max_queue  # batches (one per flush and process) waiting to be written
        self.error: str | None = None
        self.dropped = 0
        self.written = 0
        self._queued = 0
        self._count_lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._summary: dict[int, tuple[int, int, int]] = {}  # processes.id -> not yet written
        self._summary_due = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_path()
        except OSError as exc:
            raise errors.Unavailable(f"cannot record to {self.path}: {exc.strerror}") from None
        try:
            self._db = self._open(interval, time.time() if started_at is None else started_at)
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(target=self._run, name="memdash-recorder", daemon=True)
        self._thread.start()

    def _lock_path(self) -> None:
        with _registry_lock:
            if _inode(self.path) in _recording_here:
                raise RecordingLocked(f"{self.path} is already being recorded by this memdash")
            if self.path.exists():
                check_file(self.path, allow_empty=True)
            # Samples hold command lines: the file is for its owner only.
            self._lock_fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                raise RecordingLocked(
                    f"another memdash is already recording to {self.path}"
                ) from None
            self._key = _inode(self.path)
            _recording_here[self._key] = self.path

    def _open(self, interval: float, started_at: float) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            version = check_schema(db, self.path, allow_new=True)
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL: a commit survives a crash of the process (not of the OS) unsynced.
            db.execute("PRAGMA synchronous = NORMAL")
            if version == 0:
                db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            meta = {
                "started_at": started_at,
                "t0_ms": round(started_at * 1000),
                "memdash_version": __version__,
                "host": socket.gethostname(),
                "interval": interval,
            }  # an existing file keeps its own: new samples append to it
            db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", meta.items())
            t0 = db.execute("SELECT value FROM meta WHERE key = 't0_ms'").fetchone()[0]
            self._rows = RowWriter(db, t0)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise BadRecording(f"cannot record to {self.path}: {exc}") from None
        except BaseException:
            db.close()
            raise
        return db

    # -- the callers' side: enqueue only ---------------------------------------------------

    def _put(self, item: tuple) -> None:
        if self.error is None:
            self._queue.put(item)

    def add_batches(self, batches: list[dict]) -> None:
        """Queue one flush: ``[{"pid", "children", "samples": [sample, ...]}, ...]``."""
        if self.error is not None or not batches:
            return
        with self._count_lock:
            if self._queued + len(batches) > self.max_queue:
                self.dropped += len(batches)
                if self.dropped == len(batches) or self.dropped % 1000 < len(batches):
                    log.warning("recording to %s is behind: %d batches dropped", self.path,
                                self.dropped)  # fmt: skip
                return
            self._queued += len(batches)
        self._queue.put(("batches", batches))

    def add_process(self, key_pid: int, create_time: float, children: bool, info: dict) -> None:
        """A series starts: later batches for (pid, children) belong to this process."""
        self._put(("process", key_pid, create_time, bool(children), dict(info)))

    def add_exit(self, pid: int, children: bool, t: float, reason: str) -> None:
        self._put(("exit", pid, bool(children), t, reason))

    def add_run(self, run: dict) -> None:
        """Insert or update a leak-lab run (``Run.to_dict()``, optional ``verdict``)."""
        self._put(("run", dict(run)))

    def add_mark(self, t: float, kind: str, label: str, pid: int | None = None,
                 children: bool = False) -> None:  # fmt: skip
        self._put(("mark", t, kind, label, pid, bool(children)))

    def add_tool_result(self, t: float, run_id: str | None, pid: int | None, kind: str,
                        result: object, artefact: str | None = None) -> None:  # fmt: skip
        self._put(("tool", t, run_id, pid, kind, json.dumps(result), artefact))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; True when it was committed."""
        done = threading.Event()
        self._queue.put(("sync", done))
        self._urgent.set()
        if not self._thread.is_alive():
            return False
        return done.wait(timeout) and self.error is None

    def close(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._queue.put(("stop",))
            self._urgent.set()
            self._thread.join(timeout)

    def status(self) -> dict:
        return {"path": str(self.path), "error": self.error, "dropped": self.dropped,
                "written": self.written}  # fmt: skip

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                items = [self._queue.get()]
                if items[0][0] not in ("sync", "stop"):
                    self._urgent.wait(self.commit_every)  # gather a second of flushes
                self._urgent.clear()
                while len(items) < 5000:  # one transaction for all that is waiting
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if not self._write(items):
                    break
        finally:
            self._db.close()  # checkpoints the WAL into the file when it can
            self._release()
            while True:  # after an error: nobody waits forever on a flush() queued behind it
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item[0] == "sync":
                    item[1].set()

    def _write(self, items: list[tuple]) -> bool:
        syncs, stop, stats, collected = [], False, {}, {}
        rows = self._rows
        handlers = {"process": rows.process, "exit": rows.exit, "run": rows.run,
                    "mark": rows.mark, "tool": rows.tool}  # fmt: skip
        try:
            self._db.execute("BEGIN")
            for item in items:
                kind = item[0]
                if kind == "batches":
                    rows.collect(item[1], collected)
                elif kind == "sync":
                    syncs.append(item[1])
                elif kind == "stop":
                    stop = True
                else:
                    handlers[kind](*item[1:])
            rows.samples(collected, stats)
            # The per-process summary (first_t, last_t, samples) is brought up to date once a
            # second and on flush/close, not at every flush: twenty UPDATEs ten times a second
            # cost as much CPU as the samples themselves. After a crash it may lag a second.
            due = syncs or stop or time.monotonic() >= self._summary_due
            pending = rows.merge(dict(self._summary), stats)
            if due:
                for pid_id, (first, last, count) in pending.items():
                    self._db.execute(
                        "UPDATE processes SET first_t = min(coalesce(first_t, ?), ?), last_t ="
                        " max(coalesce(last_t, ?), ?), samples = samples + ? WHERE id = ?",
                        (first, first, last, last, count, pid_id),
                    )
            self._db.execute("COMMIT")
            self._summary = {} if due else pending
            if due:
                self._summary_due = time.monotonic() + 1.0
        except Exception as exc:  # disk full, read-only disk, I/O error, a malformed item
            self._fail(exc)
            stop = True
        finally:
            with self._count_lock:
                self._queued -= sum(len(i[1]) for i in items if i[0] == "batches")
        self.written += sum(s[2] for s in stats.values()) if self.error is None else 0
        for done in syncs:
            done.set()
        return not stop

    def _fail(self, exc: Exception) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self.error = f"recording to {self.path} stopped: {exc}"
        log.error("%s", self.error)
        if self.on_error is not None:
            try:
                self.on_error(self.error)
            except Exception:
                log.exception("recording error callback failed")

    def _release(self) -> None:
        with _registry_lock:
            _recording_here.pop(getattr(self, "_key", None), None)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # only after SQLite closed: see check_file
            self._lock_fd = -1
