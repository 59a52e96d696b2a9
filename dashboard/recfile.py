"""The recording file's format: its schema, and the checks made before SQLite opens one.

A session is one SQLite file (stdlib sqlite3, WAL). The writer is :mod:`dashboard.recording`,
the reader :mod:`dashboard.recorded`, the session list :mod:`dashboard.sessions`.

Storage choices (20 PIDs at 10 Hz must stay under ~30 MiB an hour):
- ``samples`` is a WITHOUT ROWID table keyed by (process_id, t): no separate index, and a
  sample repeated by a backfill is stored once.
- ``samples.t`` is whole milliseconds since ``meta.t0_ms`` (4 bytes instead of 8); every other
  table keeps epoch seconds (REAL).
- Figures /proc reports in KiB or pages (rss ... anon) are stored in KiB, so exact; language
  heap figures and ``children`` are stored as reported.
"""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

from . import errors

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
