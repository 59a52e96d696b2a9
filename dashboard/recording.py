"""Session recordings: one SQLite file (stdlib sqlite3, WAL) per dashboard session.

:class:`Recorder` writes on its own thread from a queue, so sampling never waits for the disk;
:class:`Recording` reads a file back (replay, export, the session list).

Storage choices (20 PIDs at 10 Hz must stay under ~30 MiB an hour):
- ``samples`` is a WITHOUT ROWID table keyed by (process_id, t): no separate index, and a
  sample repeated by a backfill is stored once.
- ``samples.t`` is whole milliseconds since ``meta.t0_ms`` (4 bytes instead of 8); every other
  table keeps epoch seconds (REAL).
- Figures /proc reports in KiB or pages (rss ... anon) are stored in KiB, so exact; language
  heap figures and ``children`` are stored as reported.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import socket
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

from . import __version__, errors

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KIB_FIELDS = ("rss", "vms", "shared", "text", "data", "uss", "pss", "swap", "anon")
FIELDS = KIB_FIELDS + ("heap_used", "heap_total", "external", "children")
_COLUMNS = ", ".join(f"{f} INTEGER" for f in FIELDS)
SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
CREATE TABLE processes (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, create_time REAL NOT NULL,
    children INTEGER NOT NULL, name TEXT, cmdline TEXT, info TEXT,
    first_t INTEGER, last_t INTEGER, samples INTEGER NOT NULL DEFAULT 0,
    UNIQUE (pid, create_time, children));
CREATE TABLE samples (process_id INTEGER NOT NULL, t INTEGER NOT NULL, {_COLUMNS},
    PRIMARY KEY (process_id, t)) WITHOUT ROWID;
CREATE TABLE exits (process_id INTEGER NOT NULL, t REAL NOT NULL, reason TEXT);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, scenario TEXT, variant TEXT, runtime TEXT,
    pid INTEGER, state TEXT, reason TEXT, exit_code INTEGER, started_at REAL, ended_at REAL,
    verdict TEXT, data TEXT);
CREATE TABLE marks (t REAL NOT NULL, process_id INTEGER, kind TEXT, label TEXT);
CREATE TABLE tool_results (t REAL NOT NULL, run_id TEXT, pid INTEGER, kind TEXT, result TEXT,
    artefact TEXT);
"""
_TABLES = {"meta", "processes", "samples", "exits", "runs", "marks", "tool_results"}
BadRecording = errors.BadRecording
NewerRecording = errors.RecordingTooNew
RecordingLocked = errors.RecordingLocked


_recording_here: dict[tuple[int, int], Path] = {}  # (dev, inode) of files this process records
_registry_lock = threading.Lock()


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_file(path: Path, *, allow_empty: bool = False) -> None:
    """Refuse a missing, non-SQLite or truncated file before SQLite sees it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise errors.NotFound(f"no recording at {path}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadRecording(f"{path} is not a regular file")
    if st.st_size == 0:
        if allow_empty:
            return
        raise BadRecording(f"{path} is empty: not a memdash recording")
    if _inode(path) in _recording_here:
        return  # ours and open: reading it through a second descriptor would, on close, drop
        # the POSIX locks SQLite holds on it in this process
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except PermissionError:
        raise errors.AccessDenied(f"cannot read {path}") from None
    if not head.startswith(b"SQLite format 3\0"):
        raise BadRecording(f"{path} is not a memdash recording (not an SQLite file)")
    page_size = int.from_bytes(head[16:18], "big") if len(head) == 100 else 0
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    # The page count in the header is only valid when the two change counters agree, and
    # pages past the end may still be in the WAL (a checkpoint cut short by a full disk).
    wal = Path(f"{path}-wal")
    short = head[24:28] == head[92:96] and st.st_size < pages * page_size
    if len(head) < 100 or (short and not (wal.exists() and wal.stat().st_size)):
        want = pages * page_size
        raise BadRecording(f"{path} is truncated ({st.st_size} of {want} bytes): damaged")


def check_schema(db: sqlite3.Connection, path: Path, *, allow_new: bool = False) -> int:
    """The file's schema version; 0 only for an empty database and ``allow_new``."""
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise BadRecording(f"{path} is not a memdash recording ({exc})") from None
    if version > SCHEMA_VERSION:
        raise NewerRecording(
            f"{path} was written by a newer memdash (schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}): upgrade memdash to open it"
        )
    if version == 0 and not tables and allow_new:
        return 0
    if version == 0 or not _TABLES <= tables:
        raise BadRecording(f"{path} is an SQLite file but not a memdash recording")
    return version


def _kib(value: int | None) -> int | None:
    return None if value is None else (value + 512) >> 10


class Recorder:
    """Writes one session to ``path`` on its own thread; every ``add_*`` only enqueues.

    The writer commits whatever is queued in one transaction as soon as it arrives (one per
    flush at 10 flushes a second), so a ``kill -9`` loses at most the last flush or two.
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
        max_queue: int = 600,
    ):
        self.path = Path(path)
        self.on_error = on_error
        self._lock_fd = -1
        self.max_queue = max_queue  # batches (one per flush and process) waiting to be written
        self.error: str | None = None
        self.dropped = 0
        self.written = 0
        self._queued = 0
        self._count_lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ids: dict[tuple[int, bool], int] = {}  # (pid, children) -> processes.id
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
            self._t0 = db.execute("SELECT value FROM meta WHERE key = 't0_ms'").fetchone()[0]
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
        if not self._thread.is_alive():
            return False
        return done.wait(timeout) and self.error is None

    def close(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._queue.put(("stop",))
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
        syncs, stop, stats = [], False, {}
        handlers = {"process": self._process, "exit": self._exit, "run": self._run_row,
                    "mark": self._mark, "tool": self._tool}  # fmt: skip
        try:
            self._db.execute("BEGIN")
            for item in items:
                kind = item[0]
                if kind == "batches":
                    self._samples(item[1], stats)
                elif kind == "sync":
                    syncs.append(item[1])
                elif kind == "stop":
                    stop = True
                else:
                    handlers[kind](*item[1:])
            for pid_id, (first, last, count) in stats.items():
                self._db.execute(
                    "UPDATE processes SET first_t = min(coalesce(first_t, ?), ?),"
                    " last_t = max(coalesce(last_t, ?), ?), samples = samples + ? WHERE id = ?",
                    (first, first, last, last, count, pid_id),
                )
            self._db.execute("COMMIT")
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

    def _id(self, pid: int, children: bool) -> int:
        found = self._ids.get((pid, children))
        if found is None:  # samples before add_process: keep them under an unknown start time
            self._process(pid, 0.0, children, {})
            found = self._ids[(pid, children)]
        return found

    def _process(self, pid: int, create_time: float, children: bool, info: dict) -> None:
        cmdline = info.get("cmdline")
        cmdline = " ".join(cmdline) if isinstance(cmdline, list) else cmdline
        self._db.execute(
            "INSERT INTO processes (pid, create_time, children, name, cmdline, info)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pid, create_time, children) DO UPDATE"
            " SET name = excluded.name, cmdline = excluded.cmdline, info = excluded.info",
            (pid, create_time, children, info.get("name"), cmdline, json.dumps(info)),
        )
        row = self._db.execute(
            "SELECT id FROM processes WHERE pid = ? AND create_time = ? AND children = ?",
            (pid, create_time, children),
        ).fetchone()
        self._ids[(pid, children)] = row[0]

    def _samples(self, batches: list[dict], stats: dict) -> None:
        insert = f"INSERT OR IGNORE INTO samples VALUES ({', '.join('?' * (len(FIELDS) + 2))})"
        for batch in batches:
            if not batch["samples"]:
                continue
            pid_id = self._id(batch["pid"], bool(batch.get("children")))
            rows = [
                (pid_id, round(s["t"] * 1000) - self._t0, *[_kib(s.get(f)) for f in KIB_FIELDS],
                 s.get("heap_used"), s.get("heap_total"), s.get("external"), s.get("children"))
                for s in batch["samples"]
            ]  # fmt: skip
            before = self._db.total_changes
            self._db.executemany(insert, rows)
            new = self._db.total_changes - before  # a repeated (backfilled) sample is not new
            first, last, count = stats.get(pid_id, (rows[0][1], rows[0][1], 0))
            ts = [row[1] for row in rows]
            stats[pid_id] = (min(first, *ts), max(last, *ts), count + new)

    def _exit(self, pid: int, children: bool, t: float, reason: str) -> None:
        self._db.execute("INSERT INTO exits VALUES (?, ?, ?)", (self._id(pid, children), t, reason))

    def _run_row(self, run: dict) -> None:
        verdict = run.pop("verdict", None)
        cols = ("run_id", "scenario", "variant", "runtime", "pid", "state", "reason", "exit_code",
                "started_at", "ended_at")  # fmt: skip
        values = [run.get(c) for c in cols]
        values += [None if verdict is None else json.dumps(verdict), json.dumps(run)]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:] + ("data",))
        self._db.execute(
            f"INSERT INTO runs VALUES ({', '.join('?' * 12)}) ON CONFLICT (run_id) DO UPDATE"
            f" SET {updates}, verdict = coalesce(excluded.verdict, runs.verdict)",
            values,
        )

    def _mark(self, t: float, kind: str, label: str, pid: int | None, children: bool) -> None:
        pid_id = None if pid is None else self._id(pid, children)
        self._db.execute("INSERT INTO marks VALUES (?, ?, ?, ?)", (t, pid_id, kind, label))

    def _tool(self, *row) -> None:
        self._db.execute("INSERT INTO tool_results VALUES (?, ?, ?, ?, ?, ?)", row)


class Recording:
    """A recording opened read-only (replay, export); safe to share between threads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        check_file(self.path)
        # Read-write (SQLite falls back to read-only on a write-protected file) but query_only:
        # a read-only connection cannot remove the -wal and -shm files it creates, and the
        # last connection to close folds a crashed session's WAL into the file.
        uri = f"file:{quote(str(self.path.resolve()))}?mode=rw"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._db.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise BadRecording(f"cannot open {self.path}: {exc}") from None
        self._lock = threading.Lock()
        try:
            self.schema_version = check_schema(self._db, self.path)
            self.meta = dict(self._query("SELECT key, value FROM meta"))
        except BaseException:
            self._db.close()
            raise
        self._t0 = self.meta["t0_ms"]
        self._select = ", ".join(f"{f} * 1024" if f in KIB_FIELDS else f for f in FIELDS)
        self._select_s = ", ".join(f"s.{f} * 1024" if f in KIB_FIELDS else f"s.{f}" for f in FIELDS)

    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:  # a page beyond a cut-off end, a bad WAL
            raise BadRecording(f"{self.path} is damaged: {exc}") from None

    def _ms(self, t: float | None, default: int) -> int:
        return default if t is None else round(t * 1000) - self._t0

    def _range(self, since: float | None, until: float | None) -> tuple[int, int]:
        """``since`` is exclusive (like the live API's backfill), ``until`` inclusive."""
        return self._ms(since, -(2**62)), self._ms(until, 2**62)

    def processes(self) -> list[dict]:
        """Every recorded series: pid, create_time, children, name, cmdline, the rest of the
        process description, and first_t, last_t (None without samples) and samples (count)."""
        out = []
        for row in self._query(
            "SELECT id, pid, create_time, children, name, cmdline, info, first_t, last_t,"
            " samples FROM processes ORDER BY id"
        ):
            info = json.loads(row[6] or "{}")
            first, last = (None if v is None else (self._t0 + v) / 1000 for v in row[7:9])
            out.append({**info, "id": row[0], "pid": row[1], "create_time": row[2],
                        "children": bool(row[3]), "name": row[4], "cmdline": row[5],
                        "first_t": first, "last_t": last, "samples": row[9]})  # fmt: skip
        return out

    def process(self, process_id: int) -> dict:
        for found in self.processes():
            if found["id"] == process_id:
                return found
        raise errors.NotFound(f"no process {process_id} in {self.path}")

    def samples(self, process_id: int, since: float | None = None,
                until: float | None = None) -> list[dict]:  # fmt: skip
        """Samples in the API's format (unmeasured keys absent), oldest first."""
        rows = self._query(
            f"SELECT t, {self._select} FROM samples WHERE process_id = ? AND t > ? AND t <= ?"
            " ORDER BY t",
            (process_id, *self._range(since, until)),
        )
        out = []
        for row in rows:
            sample = {"t": (self._t0 + row[0]) / 1000}
            sample.update((f, v) for f, v in zip(FIELDS, row[1:], strict=True) if v is not None)
            out.append(sample)
        return out

    def rows(self, pids: list[int] | None = None, since: float | None = None,
             until: float | None = None) -> Iterator[tuple]:  # fmt: skip
        """(t, pid, name, *FIELDS) per sample in time order, None where not measured: one
        SELECT, streamed, for exports of any length."""
        where, params = "s.t > ? AND s.t <= ?", [self._t0, *self._range(since, until)]
        if pids:
            where += f" AND p.pid IN ({', '.join('?' * len(pids))})"
            params += list(pids)
        sql = (
            f"SELECT (? + s.t) / 1000.0, p.pid, p.name, {self._select_s} FROM samples s"
            f" JOIN processes p ON p.id = s.process_id WHERE {where} ORDER BY s.t, p.pid, p.id"
        )
        try:
            with self._lock:
                cursor = self._db.execute(sql, params)
            while chunk := cursor.fetchmany(4096):
                yield from chunk
        except sqlite3.DatabaseError as exc:
            raise BadRecording(f"{self.path} is damaged: {exc}") from None

    def envelope(
        self,
        process_id: int,
        max_points: int,
        since: float | None = None,
        until: float | None = None,
        fields: tuple[str, ...] = FIELDS,
    ) -> dict:
        """The series cut into at most ``max_points`` equal time buckets, in SQL (hours of
        samples never reach Python); same shape as :func:`dashboard.export.envelope`. Ask
        only for the ``fields`` a view draws: each costs three aggregates per sample."""
        if not set(fields) <= set(FIELDS):
            raise errors.BadRequest(f"unknown fields: {sorted(set(fields) - set(FIELDS))}")
        lo, hi = self._range(since, until)
        where = "process_id = ? AND t > ? AND t <= ?"
        first, last, count = self._query(
            f"SELECT min(t), max(t), count(*) FROM samples WHERE {where}", (process_id, lo, hi)
        )[0]
        out: dict = {"t": [], "n": []}
        if not count:
            return out
        span, n = max(last - first, 1), max(1, max_points)
        bucket = "t" if count <= n else f"min(CAST((t - ?) * {n} / {span}.0 AS INTEGER), {n - 1})"
        aggregates = ", ".join(
            f"min({f}){k}, max({f}){k}, avg({f}){k}"
            for f, k in ((f, " * 1024" if f in KIB_FIELDS else "") for f in fields)
        )
        rows = self._query(
            f"SELECT avg(t), count(*), {aggregates} FROM samples WHERE {where}"
            f" GROUP BY {bucket} ORDER BY min(t)",
            (process_id, lo, hi) + ((first,) if count > n else ()),
        )
        out["t"] = [(self._t0 + row[0]) / 1000 for row in rows]
        out["n"] = [row[1] for row in rows]
        for i, f in enumerate(fields):
            column = {
                "min": [row[2 + 3 * i] for row in rows],
                "max": [row[3 + 3 * i] for row in rows],
                "mean": [None if row[4 + 3 * i] is None else round(row[4 + 3 * i]) for row in rows],
            }
            if any(v is not None for v in column["max"]):
                out[f] = column
        return out

    def exits(self) -> list[dict]:
        rows = self._query(
            "SELECT e.process_id, p.pid, p.children, e.t, e.reason FROM exits e"
            " JOIN processes p ON p.id = e.process_id ORDER BY e.t"
        )
        keys = ("process_id", "pid", "children", "t", "reason")
        return [{**dict(zip(keys, row, strict=True)), "children": bool(row[2])} for row in rows]

    def runs(self) -> list[dict]:
        """Each run as last recorded (``Run.to_dict()``), with its ``verdict`` when one was."""
        out = []
        for data, verdict in self._query("SELECT data, verdict FROM runs ORDER BY started_at"):
            run = json.loads(data)
            if verdict is not None:
                run["verdict"] = json.loads(verdict)
            out.append(run)
        return out

    def marks(self) -> list[dict]:
        rows = self._query(
            "SELECT m.t, m.kind, m.label, m.process_id, p.pid, p.children FROM marks m"
            " LEFT JOIN processes p ON p.id = m.process_id ORDER BY m.t"
        )
        keys = ("t", "kind", "label", "process_id", "pid", "children")
        return [{**dict(zip(keys, row, strict=True)), "children": bool(row[5])} for row in rows]

    def tool_results(self) -> list[dict]:
        rows = self._query(
            "SELECT t, run_id, pid, kind, result, artefact FROM tool_results ORDER BY t"
        )
        keys = ("t", "run_id", "pid", "kind", "result", "artefact")
        return [{**dict(zip(keys, row, strict=True)), "result": json.loads(row[4])} for row in rows]

    def time_range(self) -> tuple[float, float]:
        """First and last sample time; (started_at, started_at) before the first sample."""
        first, last = self._query("SELECT min(first_t), max(last_t) FROM processes")[0]
        if first is None:
            return self.meta["started_at"], self.meta["started_at"]
        return (self._t0 + first) / 1000, (self._t0 + last) / 1000

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- where sessions live ------------------------------------------------------------------------


def sessions_dir() -> Path:
    """$XDG_DATA_HOME/memdash/sessions (the XDG default when unset or not absolute)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "memdash" / "sessions"


def default_session_path(now: float | None = None, directory: Path | None = None) -> Path:
    """<sessions dir>/<local start time>.sqlite, with -2, -3... if that name is taken."""
    directory = sessions_dir() if directory is None else Path(directory)
    stem = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(time.time() if now is None else now))
    path, n = directory / f"{stem}.sqlite", 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}.sqlite"
    return path


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def list_sessions(directory: Path | None = None) -> list[dict]:
    """Recordings in ``directory``, newest first: path, start, length (s), processes, size
    (bytes, with the WAL); a file that cannot be read is listed with its ``error``."""
    directory = sessions_dir() if directory is None else Path(directory)
    out = []
    for path in sorted(directory.glob("*.sqlite")) if directory.is_dir() else []:
        entry: dict = {"path": str(path), "size": _size(path)}
        try:
            with Recording(path) as rec:
                first, last = rec.time_range()
                entry.update(start=rec.meta["started_at"], length=max(0.0, last - first),
                             processes=len(rec.processes()))  # fmt: skip
        except errors.MemdashError as exc:
            entry.update(start=path.stat().st_mtime, error=exc.message)
        out.append(entry)
    return sorted(out, key=lambda e: e["start"], reverse=True)


def _in_use(path: Path) -> bool:
    if _inode(path) in _recording_here:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def prune(directory: Path | None = None, keep: int | None = None,
          max_size: int | None = None) -> list[Path]:  # fmt: skip
    """Delete the oldest recordings beyond the newest ``keep`` and beyond ``max_size`` bytes in
    all; a file being recorded is never deleted. Returns the deleted paths."""
    sessions = [s for s in list_sessions(directory) if not _in_use(Path(s["path"]))]
    doomed = sessions[keep:] if keep is not None else []
    if max_size is not None:
        total = 0
        for s in sessions:
            total += s["size"]
            if total > max_size and s not in doomed:
                doomed.append(s)
    removed = []
    for s in doomed:
        for suffix in ("", "-wal", "-shm"):
            Path(s["path"] + suffix).unlink(missing_ok=True)
        removed.append(Path(s["path"]))
    return removed
