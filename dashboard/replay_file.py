"""Reading a recording for replay (dashboard/replay.py plays it): :class:`ReplayFile`, the
recording's series, exits, marks, runs and tool results loaded once, a few readers so that
queries run side by side, and samples of a span in full or as a min/max envelope;
:class:`ReplayHistory` and :class:`ReplayTarget`, a recorded series read like a live one, up
to the cursor ``t`` (which the player moves).
"""

from __future__ import annotations

import contextlib
import os
import queue
from typing import Iterator

from .recorded import Recording

Key = tuple[int, bool]  # (pid, children), as the page names a series
# What the page draws (state.js METRICS): a downsampled pair carries these figures only, and
# each costs three SQL aggregates per sample of an hour-long series.
DRAWN = ("rss", "uss", "pss", "swap", "anon", "heap_used", "heap_total")


class ReplayHistory:
    """A recorded series read like a live :class:`dashboard.history.History`, up to the cursor."""

    def __init__(self, source: ReplayFile, rows: list[dict], children: bool):
        self.source, self.rows, self.children = source, rows, children

    def since(self, t: float | None = None, until: float | None = None) -> list[dict]:
        """Every sample after ``t`` up to ``until`` (the cursor when None), full resolution."""
        until = self.source.cursor() if until is None else until
        return self.source.read(self.rows, t, until)

    def backfill(
        self, since: float | None = None, window: float | None = None, max_points: int = 2000
    ) -> tuple[list[dict], float]:
        """``(samples, bucket)`` as :meth:`History.backfill`, the cursor standing for "now"."""
        t = self.source.cursor()
        lo = since
        if window:
            lo = t - window if lo is None else max(lo, t - window)
        out, bucket = [], 0.0
        per = max(2, max_points // len(self.rows))  # a reused pid: its rows share the points
        fields = DRAWN + (("children",) if self.children else ())
        for row in self.rows:
            samples, width = self.source.envelope(row["id"], lo, t, per, fields)
            out += samples
            bucket = max(bucket, width)
        if len(self.rows) > 1:
            out.sort(key=lambda s: s["t"])
        return out, bucket


class ReplayTarget:
    """A watched recorded series: what the watch handler reads of a sampler target."""

    tree = None  # a recording keeps each member's series, not the tree's membership

    def __init__(self, source: ReplayFile, key: Key, rows: list[dict]):
        self.pid, self.children = key
        self.rows = rows
        self.history = ReplayHistory(source, rows, self.children)

    def describe(self) -> dict:
        row = self.rows[-1]
        skip = ("id", "samples")
        return {k: v for k, v in row.items() if k not in skip}


class ReplayFile:
    """One recording, read: what happened besides samples (loaded once), the samples on
    demand. ``t`` is the cursor, at the end until a player moves it."""

    def __init__(self, recording: Recording, readers: int = min(4, os.cpu_count() or 1)):
        self.rec = recording
        # A Recording serves one query at a time; sqlite3 lets go of the GIL while a query
        # runs, so a few connections let a page's watches (sent all at once) use every core.
        self._extra = [Recording(recording.path) for _ in range(readers - 1)]
        self._readers: queue.SimpleQueue[Recording] = queue.SimpleQueue()
        for reader in [recording, *self._extra]:
            self._readers.put(reader)
        self.series: dict[Key, list[dict]] = {}
        for row in recording.processes():
            self.series.setdefault((row["pid"], row["children"]), []).append(row)
        self._exits = recording.exits()
        self._marks = [_mark(m) for m in recording.marks()]
        self._runs = recording.runs()
        self._tools = recording.tool_results()
        # The span covers what happened besides samples too: an exit after the last sample.
        times = [e["t"] for e in self._exits + self._marks + self._tools]
        times += [r[k] for r in self._runs for k in ("started_at", "ended_at") if r.get(k)]
        self.first, self.last = recording.time_range()
        if times:
            self.first, self.last = min(self.first, *times), max(self.last, *times)
        self.t = self.last  # opens at the end
        self._cache: dict[tuple, tuple[list[dict], float]] = {}

    def cursor(self) -> float:
        return self.t

    @contextlib.contextmanager
    def _reader(self) -> Iterator[Recording]:
        reader = self._readers.get()
        try:
            yield reader
        finally:
            self._readers.put(reader)

    def read(self, rows: list[dict], since: float | None, until: float) -> list[dict]:
        with self._reader() as rec:
            out = [s for row in rows for s in rec.samples(row["id"], since, until)]
        return sorted(out, key=lambda s: s["t"]) if len(rows) > 1 else out

    def envelope(self, process_id: int, since: float | None, until: float, max_points: int,
                 fields: tuple[str, ...]) -> tuple[list[dict], float]:  # fmt: skip
        """At most ``max_points`` samples of (since, until]: all of them, or two per bucket
        (the minimum and the maximum of each figure) and the bucket's width. Cached: viewers
        of one paused cursor ask for the same."""
        key = (process_id, since, until, max_points, fields)
        found = self._cache.get(key)
        if found is not None:
            return found
        with self._reader() as rec:
            env = rec.envelope(process_id, max(1, max_points // 2), since, until, fields)
            if sum(env["n"]) <= max_points:
                found = rec.samples(process_id, since, until), 0.0
            else:
                found = _pairs(env, until), _width(env["t"])
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = found
        return found

    def close(self) -> None:
        """Close the extra readers (the recording itself is its opener's)."""
        for reader in self._extra:
            reader.close()


def _pairs(env: dict, until: float) -> list[dict]:
    """Two samples per envelope bucket, the minimum then the maximum of every figure, a
    quarter bucket either side of the bucket's mean time (the page keeps one sample per t)."""
    quarter = _width(env["t"]) / 4
    fields = [f for f in env if f not in ("t", "n")]
    out = []
    for i, t in enumerate(env["t"]):
        low = {"t": t - quarter}
        high = {"t": min(t + quarter, until)}
        for f in fields:
            lo, hi = env[f]["min"][i], env[f]["max"][i]
            if lo is not None:
                low[f], high[f] = lo, hi
        out += (low, high) if high["t"] > low["t"] else (high,)
    return out


def _width(times: list[float]) -> float:
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0


def exit_event(gone: dict) -> dict:
    return {"pid": gone["pid"], "children": gone["children"], "t": gone["t"],
            "reason": gone["reason"] or "exited"}  # fmt: skip


def _mark(mark: dict) -> dict:
    out = {"t": mark["t"], "kind": mark["kind"], "label": mark["label"]}
    if mark["pid"] is not None:
        out["pid"] = mark["pid"]
    return out


def run_at(run: dict, t: float) -> dict | None:
    """A run as it stood at ``t``: None before it started; running (its end, reason and
    verdict not known yet) until it ended; then as last recorded."""
    started, ended = run.get("started_at"), run.get("ended_at")
    if started is None or started > t:
        return None
    out = {k: v for k, v in run.items() if k != "verdict"}
    if ended is not None and ended <= t:
        return out
    for k in ("reason", "exit_code", "ended_at"):
        out.pop(k, None)
    return {**out, "state": "running", "growth": None}
