"""The backfill a viewer gets when it starts watching: :class:`Backfill`, the part of
``history.History`` that reads a series for a chart.

:meth:`History.backfill` sizes what a joining viewer gets to what its chart can show: at most
``max_points`` samples for the window on screen, the minimum and maximum of each figure per
time bucket kept (a one-sample spike stays visible), full resolution when the window holds few
enough samples; a window that reaches back past the full-rate samples reads the tiers too.
Buckets are aligned to multiples of their width, so the complete ones are computed once and
shared (cached) by every viewer who asks for the same window meanwhile.
"""

from __future__ import annotations

import bisect
import math
from array import array

from .memory import SAMPLE_FIELDS
from .tiers import INF, envelope, gather


class Backfill:
    """Mixed into ``history.History``: reads its columns and tiers under its lock."""

    def backfill(
        self, since: float | None = None, window: float | None = None, max_points: int = 2000
    ) -> tuple[list[dict], float]:
        """``(samples, bucket)``: :meth:`backfill_parts`' two lists as one."""
        head, tail, bucket = self.backfill_parts(since, window, max_points)
        return head + tail, bucket

    def backfill_parts(
        self, since: float | None = None, window: float | None = None, max_points: int = 2000
    ) -> tuple[list[dict], list[dict], float]:
        """What a viewer joining now needs to draw ``window`` seconds (all when None) after
        ``since`` (a reconnecting viewer's last sample; None for all): ``(head, tail, bucket)``,
        the samples being ``head + tail``.

        ``bucket`` is 0.0 when the samples are every sample of the span (at most ``max_points``,
        all full-rate); otherwise the span is cut into buckets of ``bucket`` seconds (aligned to
        multiples of it) and each gives two samples, at the times of its lowest and its highest
        RSS, carrying the minimum and the maximum of every figure in it (``max_points`` samples
        in all at most, plus the last bucket's samples as they are). A span that reaches back
        past the full-rate samples reads the tiers' minima and maxima too (tiers.envelope_rows)
        and ``bucket`` is at least the coarsest tier width read (1 or 60 s). Complete buckets
        are cached per (window, max_points, bucket range): viewers who join within the same
        bucket share one computation and one ``head`` list (do not modify it; its identity names
        it); ``tail`` is the filling bucket's samples. The oldest bucket is whole, so it may
        reach up to one bucket before the span."""
        max_points = max(2, int(max_points))
        with self.lock:
            n = len(self)
            if n == 0:
                return [], [], 0.0
            times = self._times()
            newest = times[n - 1]
            start = -math.inf if window is None else newest - window
            if since is not None:
                start = max(start, since)
            tiers = [t for t in (self.minutes, self.seconds) if len(t) and t.t[-1] > start]
            first = bisect.bisect_right(times, start)
            if not tiers and n - first <= max_points:
                return self._rows(first, n), [], 0.0
            oldest = tiers[0].t[tiers[0].after(start)] if tiers else times[first]
            span = window if window is not None else newest - oldest
            width = _nice(span / (max_points // 2))
            b0 = math.floor(oldest / width)
            b1 = math.floor(newest / width)  # the bucket still filling: sent as it is
            tail = bisect.bisect_left(times, b1 * width, first)
            key = (window, max_points, width, b0, b1)
            cached = self._cache.get(key)
            if cached is None:  # whole buckets, so the result depends on the key alone
                cached, whole = self._envelope(times, b0, b1, width, tail)
                if whole:
                    self._cache = {key: cached}  # only the newest: older keys will not come back
            reduced, coarsest = cached
            return reduced, self._rows(tail, n), max(width, coarsest)

    def _envelope(
        self, times: array, b0: int, b1: int, width: float, tail: int
    ) -> tuple[tuple[list[dict], float], bool]:
        """((min/max samples of buckets ``b0 <= b < b1``, and of the tier buckets in ``b1``;
        the coarsest tier width read), whether the result holds whole buckets only)."""
        edge = b0 * width
        present = set(self._dense) | set(self._sparse) | set(self.seconds.figures)
        names = [
            name for name in SAMPLE_FIELDS[1:] if name in present or name in self.minutes.figures
        ]
        lows, highs, columns, coarsest = gather((self.minutes, self.seconds), edge, names)
        whole = bisect.bisect_left(highs, b1 * width) == len(highs)  # no tier rows in b1
        a = bisect.bisect_left(times, edge)
        if a < tail:
            lows += times[a:tail]
            highs += times[a:tail]
            for name in names:
                lo, hi = self._bounds(name, a, tail)
                columns[name][0].extend(lo)
                columns[name][1].extend(hi)
        ends = [bisect.bisect_left(highs, b * width) for b in range(b0 + 1, b1 + 1)]
        ends.append(len(highs))
        return (envelope(lows, highs, columns, ends), coarsest), whole

    def _bounds(self, name: str, a: int, b: int) -> tuple[array, array]:
        """Logical rows ``a:b`` of a figure as (lows, highs) for :func:`tiers.envelope`: the
        values, +inf/-inf where a sample did not measure it."""
        if name in self._dense:
            column = self._column(name, a, b)
            if name not in self._partial:
                return column, column
            lows = array("d", (INF if math.isnan(v) else v for v in column))
            return lows, array("d", (-INF if math.isnan(v) else v for v in column))
        lows, highs = array("d", [INF]) * (b - a), array("d", [-INF]) * (b - a)
        sparse = self._sparse.get(name)
        if sparse is not None:
            base = self._first + a
            i, j = sparse.between(base, self._first + b)
            for seq, value in zip(sparse.seqs[i:j], sparse.values[i:j], strict=True):
                lows[seq - base] = highs[seq - base] = value
        return lows, highs


def _nice(seconds: float) -> float:
    """A bucket width at least ``seconds``, rounded up to 1, 2 or 5 times a power of ten: the
    same width for windows that differ slightly, so their buckets line up."""
    if seconds <= 0:
        return 1e-3
    power = 10 ** math.floor(math.log10(seconds))
    for step in (1, 2, 5, 10):
        if step * power >= seconds:
            return step * power
    return 10 * power
