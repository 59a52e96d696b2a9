"""The rows a :class:`dashboard.recording.Recorder` writes, inside the transaction its thread
opened: a series' process row (and its id), samples (KiB, milliseconds after ``t0``), exits,
runs, marks and tool results. The format is :mod:`dashboard.recfile`.
"""

from __future__ import annotations

import json
import operator
import sqlite3

from .recfile import FIELDS, KIB_FIELDS

# Every sample carries t and the statm figures; the others come once a second or less (a
# sample with only those has ``len(sample) == len(STATM) + 1``): the hot path of recording.
STATM = KIB_FIELDS[:5]  # rss, vms, shared, text, data: first in the row
_statm = operator.itemgetter(*STATM)
_PLAIN = FIELDS[len(KIB_FIELDS) :]  # stored as they are, not in KiB
# A statm-only row names its seven columns and leaves the rest NULL: binding nine NULLs a row
# cost more than inserting it (benchmarks/bench_recording.py: recording's CPU about halved).
_STATM_ROW = 2 + len(STATM)  # process_id, t, the statm figures
_INSERT_STATM = (
    f"INSERT OR IGNORE INTO samples (process_id, t, {', '.join(STATM)})"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT = f"INSERT OR IGNORE INTO samples VALUES ({', '.join('?' * (len(FIELDS) + 2))})"


def _kib(value: int | None) -> int | None:
    return None if value is None else (value + 512) >> 10


def _row(pid_id: int, t0: int, s: dict) -> tuple:
    """A sample as a row of the samples table (KiB, ms after t0): ``_STATM_ROW`` values for a
    sample of the statm figures only (``_INSERT_STATM``), else one per column (``_INSERT``)."""
    ms = round(s["t"] * 1000) - t0
    if len(s) == len(STATM) + 1:
        try:
            rss, vms, shared, text, data = _statm(s)
            return (pid_id, ms, (rss + 512) >> 10, (vms + 512) >> 10, (shared + 512) >> 10,
                    (text + 512) >> 10, (data + 512) >> 10)  # fmt: skip
        except (KeyError, TypeError):  # not those figures after all, or one is None
            pass
    return (pid_id, ms, *[_kib(s.get(f)) for f in KIB_FIELDS],
            *[s.get(f) for f in _PLAIN])  # fmt: skip


class RowWriter:
    """Writes to ``db`` (the writer thread's connection); ``t0`` is the file's t0_ms."""

    def __init__(self, db: sqlite3.Connection, t0: int) -> None:
        self.db, self.t0 = db, t0
        self.ids: dict[tuple[int, bool], int] = {}  # (pid, children) -> processes.id

    def id_of(self, pid: int, children: bool) -> int:
        found = self.ids.get((pid, children))
        if found is None:  # samples before add_process: keep them under an unknown start time
            self.process(pid, 0.0, children, {})
            found = self.ids[(pid, children)]
        return found

    def process(self, pid: int, create_time: float, children: bool, info: dict) -> None:
        cmdline = info.get("cmdline")
        cmdline = " ".join(cmdline) if isinstance(cmdline, list) else cmdline
        self.db.execute(
            "INSERT INTO processes (pid, create_time, children, name, cmdline, info)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pid, create_time, children) DO UPDATE"
            " SET name = excluded.name, cmdline = excluded.cmdline, info = excluded.info",
            (pid, create_time, children, info.get("name"), cmdline, json.dumps(info)),
        )
        row = self.db.execute(
            "SELECT id FROM processes WHERE pid = ? AND create_time = ? AND children = ?",
            (pid, create_time, children),
        ).fetchone()
        self.ids[(pid, children)] = row[0]

    def collect(self, batches: list[dict], rows: dict[int, list[tuple]]) -> None:
        """A flush's samples as rows, added to ``rows`` by process id (resolved now, in queue
        order, so that a pid reused later in the same transaction gets its own)."""
        for batch in batches:
            if not batch["samples"]:
                continue
            pid_id = self.id_of(batch["pid"], bool(batch.get("children")))
            t0 = self.t0
            rows.setdefault(pid_id, []).extend(_row(pid_id, t0, s) for s in batch["samples"])

    def samples(self, rows: dict[int, list[tuple]], stats: dict) -> None:
        """Insert the collected rows: one statement per process and transaction (per flush,
        they cost more than the samples); ``stats`` gets each one's (first, last, new)."""
        for pid_id, mine in rows.items():
            before = self.db.total_changes
            short = [row for row in mine if len(row) == _STATM_ROW]
            if short:
                self.db.executemany(_INSERT_STATM, short)
            if len(short) < len(mine):
                self.db.executemany(_INSERT, [row for row in mine if len(row) != _STATM_ROW])
            new = self.db.total_changes - before  # a repeated (backfilled) sample is not new
            ts = [row[1] for row in mine]
            first, last, count = stats.get(pid_id, (ts[0], ts[0], 0))
            stats[pid_id] = (min(first, *ts), max(last, *ts), count + new)

    def exit(self, pid: int, children: bool, t: float, reason: str) -> None:
        self.db.execute(
            "INSERT INTO exits VALUES (?, ?, ?)", (self.id_of(pid, children), t, reason)
        )

    def run(self, run: dict) -> None:
        verdict = run.pop("verdict", None)
        cols = ("run_id", "scenario", "variant", "runtime", "pid", "state", "reason", "exit_code",
                "started_at", "ended_at")  # fmt: skip
        values = [run.get(c) for c in cols]
        values += [None if verdict is None else json.dumps(verdict), json.dumps(run)]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:] + ("data",))
        self.db.execute(
            f"INSERT INTO runs VALUES ({', '.join('?' * 12)}) ON CONFLICT (run_id) DO UPDATE"
            f" SET {updates}, verdict = coalesce(excluded.verdict, runs.verdict)",
            values,
        )

    def mark(self, t: float, kind: str, label: str, pid: int | None, children: bool) -> None:
        pid_id = None if pid is None else self.id_of(pid, children)
        self.db.execute("INSERT INTO marks VALUES (?, ?, ?, ?)", (t, pid_id, kind, label))

    def tool(self, *row) -> None:
        self.db.execute("INSERT INTO tool_results VALUES (?, ?, ?, ?, ?, ?)", row)

    @staticmethod
    def merge(into: dict, stats: dict) -> dict:
        """Per-process summaries ``{id: (first_t, last_t, samples)}`` added into ``into``."""
        for pid_id, (first, last, count) in stats.items():
            was = into.get(pid_id)
            into[pid_id] = (first, last, count) if was is None else (
                min(was[0], first), max(was[1], last), was[2] + count)  # fmt: skip
        return into
