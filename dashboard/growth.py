"""How fast one memory series grows, and whether that is a leak: the one growth estimator.

Pure (stdlib only; no threads, no I/O, no clock): the sampler gives each series (a process, a
process tree summed, a run's helper such as its redis-server) its own :class:`GrowthEstimator`,
feeds it every fast sample with ``add`` and asks ``estimate`` when it reports (once a second).

- ``add`` is O(1): samples are folded into 1 s medians (a GC spike of a few samples does not
  move a median); only the last ``2 * window_s`` medians are kept.
- The rate is Theil–Sen (the median of the slopes between pairs of medians at least
  ``min_gap_s`` apart, so a GC sawtooth does not count) over the trailing ``window_s``.
- Discontinuities are not growth: a change of ``members`` (the pids of a process tree) or a
  ``quiet(start, end)`` span (a tool action: a heap snapshot makes RSS jump 30-45 MiB) starts a
  new segment; only pairs within one segment give slopes, so the level shift between segments
  counts for nothing; samples inside a quiet span are dropped.
- Growing means sustained: the slope over the window is above the threshold, so is the slope
  of its recent part (the last ``recent_s``), and the window spans ``patience_s`` (so a step,
  a burst, or the first seconds of a process are not a leak).
- The warm-up ends when the series has settled, not after a fixed time: a start-up climb that
  levels off (CPython imports, V8 sizing its heap: its recent slope is under ``settle_ratio``
  of the one just before) reads ``warming_up`` until its recent part is flat (``stable``, and
  only what came after the climb is fitted from then on); a climb that does not slow down ends
  the warm-up as ``growing``.
- The threshold is an absolute floor plus a fraction of the level per minute, plus
  ``noise_k`` standard errors of the slope (from the scatter of the medians): 2 MiB/min is news
  for a 10 MiB redis-server, not for a 2 GiB JVM or a process whose RSS saws by 8 MiB.
- ``helper=True`` (a service a run starts, like its redis-server): such a service fills its
  working set at start (cache keys until their TTL, 10 s in the leak lab), which is no leak, so
  it cannot read growing before 30 s; it settles on a shorter recent part (4 s).

Tuned on real traces of the leak lab (tests/data/growth/, benchmarks/bench_verdicts.py).
"""

from __future__ import annotations

import bisect
import collections
import statistics
from dataclasses import dataclass

from .slopes import Point, slope_error, theil_sen

MiB = 2**20
VERDICTS = ("warming_up", "stable", "growing", "shrinking")


@dataclass(frozen=True)
class Growth:
    """A series' growth rate and what it means; ``window_s`` is the span the rate is fitted on."""

    bytes_per_min: int
    verdict: str
    window_s: float

    def to_dict(self) -> dict:
        return {
            "bytes_per_min": self.bytes_per_min,
            "verdict": self.verdict,
            "window_s": self.window_s,
        }


class GrowthEstimator:
    """The growth of one series (a process, or a process tree summed), fed sample by sample.

    Times are seconds on any clock that only goes forward (the sampler's ``time.time()``);
    values are bytes. Keyword arguments are the tuning (see the module docstring).
    """

    def __init__(
        self,
        *,
        window_s: float = 30.0,
        bucket_s: float = 1.0,
        min_span_s: float = 5.0,
        floor_bytes_per_min: float = 1.5 * MiB,
        relative_per_min: float = 0.1,
        settle_ratio: float = 0.5,
        noise_k: float = 3.0,
        patience_s: float | None = None,
        min_gap_s: float = 4.0,
        recent_s: float | None = None,
        helper: bool = False,
    ):
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.min_span_s = min_span_s  # the shortest span a verdict other than warming_up needs
        self.floor = floor_bytes_per_min / 60  # bytes per second
        self.relative = relative_per_min / 60  # fraction of the level per second
        self.settle_ratio = settle_ratio  # recent/earlier slope below this: still decelerating
        self.noise_k = noise_k  # a slope within noise_k standard errors of 0 is no growth
        # growing needs a window this long (after any warm-up)
        self.patience_s = patience_s if patience_s is not None else (30.0 if helper else 10.0)
        self.min_gap_s = min_gap_s
        self.recent_s = recent_s if recent_s is not None else (4.0 if helper else 6.0)
        self._points: collections.deque[Point] = collections.deque(
            maxlen=int(2 * window_s / bucket_s) + 2
        )
        self._bucket: list[float] = []
        self._bucket_key: int | None = None
        self._bucket_first = self._bucket_last = 0.0
        self._members: object = None
        self._breaks: list[float] = []  # times at which a new segment starts
        self._quiet: list[tuple[float, float]] = []
        self._settled = False
        self._since = float("-inf")  # points before the end of the warm-up are not fitted
        self._verdict = "warming_up"
        self._cache: tuple[int, Growth] | None = None
        self._version = 0
        self._layout = 0  # bumped when points or breaks change under the cached slope rows
        self._seq = 0

    # -- feeding ----------------------------------------------------------------------------

    def add(self, t: float, value: int, members: object = None) -> None:
        """One sample at time ``t`` (seconds, any origin, increasing); ``members`` identifies
        what was summed (e.g. a frozenset of pids): a change of it is a discontinuity."""
        if members != self._members:
            if self._bucket_key is not None or self._points:
                self._close()
                self._breaks.append(t)
                self._version += 1
            self._members = members
        if self._quiet and self._in_quiet(t, t):
            return
        key = int(t // self.bucket_s)
        if key != self._bucket_key:
            self._close()
            self._bucket_key, self._bucket_first = key, t
        self._bucket.append(value)
        self._bucket_last = t

    def quiet(self, start: float, end: float) -> None:
        """Ignore ``start..end`` (a tool action), also retroactively: its samples are dropped
        and the level after it is not compared with the level before it."""
        if end < start:
            start, end = end, start
        self._quiet.append((start, end))
        bisect.insort(self._breaks, start)
        if self._bucket and self._bucket_last >= start and self._bucket_first <= end:
            self._bucket, self._bucket_key = [], None  # a median half inside the action
        kept = [p for p in self._points if p.last < start or p.first > end]
        self._points.clear()
        self._points.extend(kept)
        for seq, p in enumerate(kept, self._seq - len(kept)):
            p.seq = seq
        self._version += 1
        self._layout += 1  # a break among the points: every cached slope row is stale

    def _in_quiet(self, first: float, last: float) -> bool:
        return any(first <= e and last >= s for s, e in self._quiet)

    def _close(self) -> None:
        if self._bucket:
            self._points.append(
                Point(
                    self._bucket_first,
                    self._bucket_last,
                    statistics.median(self._bucket),
                    self._seq,
                )
            )
            self._seq += 1
            self._version += 1
        self._bucket, self._bucket_key = [], None
        if self._points:  # forget what can no longer be in a window
            oldest = self._points[0].first
            self._quiet = [q for q in self._quiet if q[1] >= oldest]
            self._breaks = [b for b in self._breaks if b >= oldest] or self._breaks[-1:]

    # -- reading ----------------------------------------------------------------------------

    def estimate(self, now: float | None = None) -> Growth:
        """The growth over the trailing window; ``now`` closes a bucket that has ended."""
        if now is not None and self._bucket_key is not None:
            if now >= (self._bucket_key + 1) * self.bucket_s:
                self._close()
        if self._cache is not None and self._cache[0] == self._version:
            return self._cache[1]
        growth = self._estimate()
        self._cache = (self._version, growth)
        return growth

    def _segment(self, p: Point) -> int:
        return bisect.bisect_right(self._breaks, p.first)

    def _estimate(self) -> Growth:
        if not self._points:
            return Growth(0, "warming_up", 0.0)
        newest = self._points[-1].t
        start = max(newest - self.window_s, self._since)
        window = [p for p in self._points if p.t >= start]
        span = newest - window[0].t
        segment = self._segment(window[0])  # the usual case: the window's only one
        one = segment == self._segment(window[-1])
        # An idle process's RSS often holds still for the whole window (one segment): then
        # every slope and second difference is exactly 0, and pairing points only says so.
        flat = one and self._flat(window)
        if flat:
            slope = 0.0
        else:
            pts = [(p.t, p.value, segment if one else self._segment(p)) for p in window]
            # pairs closer than a GC cycle measure the sawtooth, not the trend
            gap = min(self.min_gap_s, span / 3)
            slope = self._window_slope(window) if gap == self.min_gap_s else theil_sen(pts, gap)
        if slope is None or span < self.min_span_s:
            verdict = self._verdict if self._settled else "warming_up"
            return Growth(int((slope or 0.0) * 60), verdict, round(span, 1))
        level = window[0].value if flat else statistics.median(v for _, v, _ in pts)
        base = self.floor + self.relative * level
        length = min(span / 2, self.recent_s)
        cut = newest - length
        if flat:
            threshold, recent, early = base, 0.0, 0.0
            recent_at = base if sum(p.t >= cut for p in window) >= 4 else None
        else:
            threshold = base + self.noise_k * slope_error(pts)
            gap = min(self.min_gap_s, length / 3)
            tail = [p for p in pts if p[0] >= cut]
            recent = theil_sen(tail, gap) or 0.0
            # the recent part is judged by its own noise (not by the start-up jumps before it),
            # but a part too noisy to tell is not called flat: at most twice the base threshold
            noise = min(base, self.noise_k * slope_error(tail))
            recent_at = base + noise if len(tail) >= 4 else None
            # the part just before it, as long: the first seconds of a process (loading its
            # runtime) are a jump that says nothing about whether it is still decelerating
            before = cut - length
            early = theil_sen([p for p in pts if before <= p[0] <= cut], gap) or 0.0
        old_enough = span >= self.patience_s
        verdict = self._judge(slope, early, recent, threshold, recent_at, old_enough)
        if verdict == "stable" and not self._settled:
            # the start-up climb is over: fit only what came after it from now on
            self._settled, self._since = True, cut
            slope = recent
        elif verdict == "growing":
            self._settled = True
        self._verdict = verdict
        return Growth(int(slope * 60), verdict, round(span, 1))

    def _flat(self, window: list[Point]) -> bool:
        """Every point of the window has the same value."""
        return all(p.value == window[0].value for p in window)

    def _window_slope(self, window: list[Point]) -> float | None:
        """``theil_sen`` of the window's points with the gap ``min_gap_s``, from each point's
        slopes to the earlier points of its segment, computed once per point: the window gains
        a point and loses one each second, so this is ~60 divisions a second, not ~400."""
        points: list[Point] = []
        slopes: list[float] = []
        for p in window:
            row = p.row
            if row is None or row[0] != self._layout:
                points = points or list(self._points)
                row = p.row = self._row(points, p.seq - points[0].seq)
            skip = window[0].seq - row[1]  # earlier points before the window
            slopes += row[2][skip:] if skip > 0 else row[2]
        return statistics.median(slopes) if slopes else None

    def _row(self, points: list[Point], j: int) -> tuple:
        """(layout, seq of the first earlier point, slopes) of point ``j``: to every earlier
        point of its segment at least ``min_gap_s`` before it (times ascend: a run of them)."""
        segment = self._segment(points[j])
        begins = self._breaks[segment - 1] if segment else float("-inf")
        lo = j
        while lo > 0 and points[lo - 1].first >= begins:
            lo -= 1
        tj, vj = points[j].t, points[j].value
        hi = j  # one past the last earlier point far enough back (as theil_sen decides it)
        while hi > lo and not (tj - points[hi - 1].t >= self.min_gap_s and tj > points[hi - 1].t):
            hi -= 1
        slopes = [(vj - q.value) / (tj - q.t) for q in points[lo:hi]]
        return (self._layout, points[lo].seq, slopes)

    def _judge(
        self,
        slope: float,
        early: float,
        recent: float,
        threshold: float,
        recent_at: float | None,
        old_enough: bool,
    ) -> str:
        if recent_at is None:
            return self._verdict if self._settled else "warming_up"
        # once growing, a dip to half the threshold (a GC pause, a sawtooth) is not the end
        keep = 0.5 if self._verdict == "growing" else 1.0
        bar = threshold * keep
        # growth over the window that goes on in its recent part: a step is not a leak
        consistent = old_enough and slope > bar and recent > recent_at * keep
        if not self._settled:
            if consistent and recent >= self.settle_ratio * early:
                return "growing"  # a steady climb from the start: no transient, a leak
            if abs(recent) <= recent_at:
                return "stable"  # it has levelled off
            return "warming_up"  # still climbing, but slower and slower
        if consistent:
            return "growing"
        if slope < -bar and recent < -recent_at * keep:
            return "shrinking"
        return "stable"
