"""The coarse tiers of a history (as Netdata keeps them): what the full-rate window forgets,
as buckets of one width (a second, a minute) with the minimum, mean and maximum of every
figure, so a long session costs bounded memory and keeps its spikes.

A :class:`Tier` is a bounded list of buckets, oldest first, in columns: the mean time of the
samples folded into each bucket, their number, and per figure its lowest, highest and mean
value and how many samples measured it. A bucket that never saw a figure holds +inf, -inf, 0
and 0 for it, so ``min()``/``max()`` over a slice need no filtering. The newest bucket is
merged into while samples of its span keep arriving; past ``keep`` buckets the oldest are
folded into the next, coarser tier (or dropped, from the last). Work is done a batch at a
time, as ``min()``/``max()``/``sum()`` over slices: C loops, not Python ones.

:func:`envelope` reduces rows that each carry a low and a high (a bucket; a sample is its
own low and high) to two samples per backfill bucket, as History.backfill does.
"""

from __future__ import annotations

import bisect
import math
import operator
from array import array
from typing import Iterable

INF = math.inf
_MAX_COUNT = 65535  # counts are unsigned 16-bit: a minute at the fastest interval is 3000

# name -> (lowest, highest, sum, count) of a figure per bucket, lists aligned with the buckets
Stats = dict[str, tuple[list, list, list, list]]


def spans(times: array, k: int, width: float) -> list[tuple[int, int]]:
    """Index ranges of the first ``k`` (ascending) ``times`` that share a bucket of ``width``."""
    bounds = []
    a = 0
    while a < k:
        end = (math.floor(times[a] / width) + 1) * width
        b = max(a + 1, bisect.bisect_left(times, end, a, k))
        bounds.append((a, b))
        a = b
    return bounds


def _stats(chunks: list) -> tuple[list, list, list, list]:
    """(lowest, highest, sum, count) of each chunk of values (inf, -inf, 0, 0 when empty)."""
    return (
        [min(c) if c else INF for c in chunks],
        [max(c) if c else -INF for c in chunks],
        [sum(c) for c in chunks],
        [len(c) for c in chunks],
    )


class _Figure:
    """One figure's columns in a tier."""

    __slots__ = ("count", "hi", "lo", "mean")

    def __init__(self, rows: int):
        self.lo = array("d", [INF]) * rows
        self.hi = array("d", [-INF]) * rows
        self.mean = array("d", [0.0]) * rows
        self.count = array("H", [0]) * rows

    def pad(self, rows: int) -> None:
        """Buckets that have not seen this figure."""
        self.lo.extend(array("d", [INF]) * rows)
        self.hi.extend(array("d", [-INF]) * rows)
        self.mean.extend(array("d", [0.0]) * rows)
        self.count.extend(array("H", [0]) * rows)


class Tier:
    """Buckets of ``width`` seconds, at most ``keep`` of them (plus a batch not yet folded on),
    oldest first; ``then`` is the coarser tier the oldest go to (None: they are dropped)."""

    def __init__(self, width: float, keep: int, then: Tier | None = None):
        if keep < 1:
            raise ValueError("a tier keeps at least one bucket")
        self.width = width
        self.keep = keep
        self.then = then
        self.batch = max(1, keep // 64)  # folded on together: one shift of the columns
        self.t = array("d")  # mean time of the bucket's samples (inside its span)
        self.n = array("I")  # samples folded into the bucket
        self.figures: dict[str, _Figure] = {}
        self._last_key: int | None = None  # the newest bucket's index (start / width)

    def __len__(self) -> int:
        return len(self.t)

    def columns(self) -> list[array]:
        """Every column (to measure what the tier costs, or to shift them all)."""
        figures = self.figures.values()
        return [self.t, self.n, *(c for f in figures for c in (f.lo, f.hi, f.mean, f.count))]

    def absorb(
        self, times: array, dense: dict[str, list], partial: set[str], sparse: dict, base: int
    ) -> None:
        """Fold full-rate samples (``times``, ascending) into this tier's buckets. ``dense``:
        name -> one value per sample (NaN where unmeasured, for the names in ``partial``);
        ``sparse``: name -> (sequence numbers, values) of the samples that measured it, the
        first sample's sequence number being ``base``."""
        width = self.width
        bounds = spans(times, len(times), width)
        cut = [slice(a, b) for a, b in bounds]
        ns = [b - a for a, b in bounds]
        figures: Stats = {}
        for name, values in dense.items():
            if name in partial:
                chunks = [[v for v in values[s] if not math.isnan(v)] for s in cut]
                if any(chunks):
                    figures[name] = _stats(chunks)
                continue
            low = min(values)
            if low == max(values):  # most statm figures hold still for seconds
                figures[name] = ([low] * len(ns), [low] * len(ns), [low * n for n in ns], ns)
            else:  # no chunk is empty
                chunks = list(map(values.__getitem__, cut))
                figures[name] = (*(list(map(f, chunks)) for f in (min, max, sum)), ns)
        cuts_of: dict[tuple, list[int]] = {}  # figures measured together share their cuts
        for name, (seqs, values) in sparse.items():
            shape = (seqs[0], seqs[-1], len(seqs))
            cuts = cuts_of.get(shape)
            if cuts is None:
                cuts = cuts_of[shape] = [bisect.bisect_left(seqs, base + a) for a, _ in bounds]
            ends = [*cuts[1:], len(seqs)]
            figures[name] = _stats([values[a:b] for a, b in zip(cuts, ends, strict=True)])
        keys = [math.floor(times[a] / width) for a, _ in bounds]
        self.extend(keys, ns, list(map(sum, map(times.__getitem__, cut))), figures)

    def extend(self, keys: list[int], ns: list[int], t_sums: list[float], figures: Stats) -> None:
        """Fold samples into buckets ``keys`` (bucket ``k`` starts at ``k * width``), ascending:
        ``ns[i]`` samples whose times sum to ``t_sums[i]``; ``figures``: name -> (lowest,
        highest, sum, count) lists aligned with ``keys`` (inf, -inf, 0, 0 where none measured
        it). A first key equal to the newest bucket's is merged into it."""
        skip = 0
        if self.t and keys[0] == self._last_key:
            skip = 1
            first = [(name, *(c[0] for c in stats)) for name, stats in figures.items()]
            self._merge(len(self.t) - 1, ns[0], t_sums[0], first)
        added = len(keys) - skip
        if not added:
            return
        rows = len(self.t)
        self._last_key = keys[-1]
        self.t.extend(map(operator.truediv, t_sums[skip:], ns[skip:]))
        self.n.extend(ns[skip:])
        for name, figure in self.figures.items():
            if name not in figures:
                figure.pad(added)
        crowded = max(ns) > _MAX_COUNT  # a figure is measured at most once a sample
        for name, (lows, highs, sums, counts) in figures.items():
            figure = self.figures.get(name)
            if figure is None:
                figure = self.figures[name] = _Figure(rows)
            figure.lo.extend(lows[skip:])
            figure.hi.extend(highs[skip:])
            counts = counts[skip:]
            if min(counts):
                figure.mean.extend(map(operator.truediv, sums[skip:], counts))
            else:
                pairs = zip(sums[skip:], counts, strict=True)
                figure.mean.extend([s / c if c else 0.0 for s, c in pairs])
            figure.count.extend([min(c, _MAX_COUNT) for c in counts] if crowded else counts)
        if len(self.t) > self.keep + self.batch:
            self._fold_oldest(len(self.t) - self.keep)

    def _merge(self, i: int, n: int, t_sum: float, figures: Iterable[tuple]) -> None:
        """Fold samples into bucket ``i``: figures are (name, lowest, highest, sum, count)."""
        old = self.n[i]
        self.t[i] = (self.t[i] * old + t_sum) / (old + n)
        self.n[i] = old + n
        for name, lo, hi, total, count in figures:
            if not count:
                continue
            figure = self.figures.get(name)
            if figure is None:
                figure = self.figures[name] = _Figure(len(self.t))
            figure.lo[i] = min(figure.lo[i], lo)
            figure.hi[i] = max(figure.hi[i], hi)
            seen = figure.count[i]
            figure.mean[i] = (figure.mean[i] * seen + total) / (seen + count)
            figure.count[i] = min(seen + count, _MAX_COUNT)

    def _fold_oldest(self, k: int) -> None:
        """Hand the oldest ``k`` buckets to the coarser tier, then forget them."""
        if self.then is not None:
            width = self.then.width
            bounds = spans(self.t, k, width)
            keys = [math.floor(self.t[a] / width) for a, _ in bounds]
            ns = [sum(self.n[a:b]) for a, b in bounds]
            t_sums = [sum(map(operator.mul, self.t[a:b], self.n[a:b])) for a, b in bounds]
            figures = {}
            for name, f in self.figures.items():
                lows = [min(f.lo[a:b]) for a, b in bounds]
                if min(lows) == INF:
                    continue
                highs = [max(f.hi[a:b]) for a, b in bounds]
                sums = [sum(map(operator.mul, f.mean[a:b], f.count[a:b])) for a, b in bounds]
                figures[name] = (lows, highs, sums, [sum(f.count[a:b]) for a, b in bounds])
            self.then.extend(keys, ns, t_sums, figures)
        for column in self.columns():
            del column[:k]

    # -- reading -----------------------------------------------------------------------------

    def after(self, t: float | None) -> int:
        """Index of the first bucket whose (mean) time is after ``t`` (None: the first)."""
        return 0 if t is None else bisect.bisect_right(self.t, t)

    def means(self, first: int) -> list[dict]:
        """Buckets ``first:`` as samples: each figure's mean (an int), at the buckets' mean time."""
        rows = [{"t": t} for t in self.t[first:]]
        for name, f in self.figures.items():
            for row, mean, count in zip(rows, f.mean[first:], f.count[first:], strict=True):
                if count:
                    row[name] = round(mean)
        return rows

    def coarse(self, name: str, since: float | None) -> list[tuple[float, float]]:
        """(mean time, mean) of ``name`` in each bucket after ``since`` that measured it."""
        f = self.figures.get(name)
        if f is None:
            return []
        first = self.after(since)
        pairs = zip(self.t[first:], f.mean[first:], f.count[first:], strict=True)
        return [(t, mean) for t, mean, count in pairs if count]

    def envelope_rows(self, first: int, names: Iterable[str]) -> tuple[array, array, dict]:
        """Buckets ``first:`` as rows for :func:`envelope`: a bucket's low is placed halfway
        between its start and its mean time, its high at its mean time (two distinct times
        inside its span, in the order they are drawn)."""
        width = self.width
        highs = self.t[first:]
        lows = array("d", [(math.floor(t / width) * width + t) / 2 for t in highs])
        rows = len(highs)
        figures = {}
        for name in names:
            f = self.figures.get(name)
            if f is None:
                figures[name] = (array("d", [INF]) * rows, array("d", [-INF]) * rows)
            else:
                figures[name] = (f.lo[first:], f.hi[first:])
        return lows, highs, figures


def gather(tiers: Iterable[Tier], edge: float, names: list[str]) -> tuple:
    """(lows, highs, {name: (lows, highs)}, coarsest width) of the tiers' buckets whose
    (mean) time is ``edge`` or later, as rows for :func:`envelope`, oldest first."""
    lows, highs = array("d"), array("d")
    columns = {name: (array("d"), array("d")) for name in names}
    coarsest = 0.0
    for tier in tiers:
        i = bisect.bisect_left(tier.t, edge)
        if i < len(tier):
            coarsest = max(coarsest, tier.width)
            tier_lows, tier_highs, figures = tier.envelope_rows(i, names)
            lows += tier_lows
            highs += tier_highs
            for name, (lo, hi) in figures.items():
                columns[name][0].extend(lo)
                columns[name][1].extend(hi)
    return lows, highs, columns, coarsest


def envelope(
    lows: array, highs: array, figures: dict[str, tuple[array, array]], ends: list[int]
) -> list[dict]:
    """Two samples per bucket of rows (``ends``: where each bucket's rows end), at the times
    of its lowest and its highest RSS, carrying the minimum and the maximum of every figure.
    A row has a low time and a high time (equal for a sample) and, per figure, a low and a
    high value (+inf/-inf where it was not measured). One sample when both are one sample."""
    rss = figures.get("rss")
    out: list[dict] = []
    a = 0
    for b in ends:
        if a == b:
            continue
        lo_i, hi_i = a, b - 1
        if rss is not None:
            chunk = rss[0][a:b]
            least = min(chunk)
            if least != INF:  # else rows without RSS (tests): the bucket's ends
                lo_i = a + chunk.index(least)
                chunk = rss[1][a:b]
                hi_i = a + chunk.index(max(chunk))
        low = {"t": lows[lo_i]}
        high = {"t": highs[hi_i]}
        for name, (lo, hi) in figures.items():
            least = min(lo[a:b])
            if least != INF:
                low[name] = int(least)
                high[name] = int(max(hi[a:b]))
        if lo_i == hi_i and low["t"] == high["t"]:
            out.append(high)
        else:
            out.extend((low, high) if lo_i <= hi_i else (high, low))
        a = b
    return out
