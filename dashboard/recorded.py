"""Reading a recording back (replay, export, the session list): :class:`Recording`."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from . import errors
from .recfile import FIELDS, KIB_FIELDS, BadRecording, check_file, check_schema


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
