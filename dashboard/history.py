"""The history of one sampled series, and the backfill a viewer gets when it starts watching.

Memory follows what is held: columns are ``array('d')`` that grow with their samples up to
``capacity``, then wrap (the oldest is overwritten). The fast figures every sample carries
(time and statm) are dense columns, 48 bytes a sample; the rest (USS/PSS/swap/anon about once
a second, language heap, descendant count) are sparse columns of (sequence number, value), so
30 minutes at 10 Hz cost about 1 MB, not 2, and a process watched for a minute costs 1/30 of it.

:meth:`History.backfill` sizes what a joining viewer gets to what its chart can show: at most
``max_points`` samples for the window on screen, the minimum and maximum of each figure per
time bucket kept (a one-sample spike stays visible), full resolution when the window holds few
enough samples. Buckets are aligned to multiples of their width, so the complete ones are
computed once and shared (cached) by every viewer who asks for the same window meanwhile.
"""

from __future__ import annotations

import bisect
import math
import threading
from array import array

# Every figure a sample may carry, in wire names. "t" is the time of the sample.
FIELDS = (
    "t",
    "rss",
    "vms",
    "shared",
    "text",
    "data",
    "uss",
    "pss",
    "swap",
    "anon",
    "heap_used",
    "heap_total",
    "external",
    "children",
)
DENSE = FIELDS[:6]  # in every sample (memory.StatmReader), "t" first
SPARSE = FIELDS[6:]
_NAN = float("nan")


class _Sparse:
    """One figure measured in some samples only: their sequence numbers and values."""

    __slots__ = ("seqs", "values")

    def __init__(self) -> None:
        self.seqs = array("q")
        self.values = array("d")

    def trim(self, first_seq: int) -> None:
        """Forget entries older than ``first_seq``; in chunks, so it costs O(1) a sample."""
        stale = bisect.bisect_left(self.seqs, first_seq)
        if stale and stale * 4 >= len(self.seqs):
            del self.seqs[:stale]
            del self.values[:stale]

    def between(self, first: int, end: int) -> tuple[int, int]:
        """Index range of the entries with ``first <= seq < end``."""
        return bisect.bisect_left(self.seqs, first), bisect.bisect_left(self.seqs, end)


class History:
    """The last ``capacity`` samples of a series, oldest first; samples arrive in time order.

    Appends come from the sampler thread; reads may come from any thread (the sampler holds
    its lock around appends, and readers copy what they need under ``self.lock``)."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._dense = {name: array("d") for name in DENSE}
        self._sparse: dict[str, _Sparse] = {}
        self._partial: set[str] = set()  # dense columns some sample lacked (tests, odd reads)
        self._start = 0  # physical index of the oldest sample, once the columns wrapped
        self._seq = 0  # sequence number of the next sample (samples ever appended)
        self.lock = threading.Lock()
        self._cache: dict[tuple, list[dict]] = {}

    def __len__(self) -> int:
        return min(self._seq, self.capacity)

    @property
    def first_seq(self) -> int:
        return self._seq - len(self)

    def nbytes(self) -> int:
        """Bytes held by the columns (what the history costs, for benchmarks and tests)."""
        dense = sum(c.buffer_info()[1] * c.itemsize for c in self._dense.values())
        sparse = sum(16 * len(s.seqs) for s in self._sparse.values())
        return dense + sparse

    def append(self, sample: dict) -> None:
        with self.lock:
            full = self._seq >= self.capacity
            for name, column in self._dense.items():
                value = sample.get(name)
                if value is None:
                    value = _NAN
                    self._partial.add(name)
                if full:
                    column[self._start] = value
                else:
                    column.append(value)
            if full:
                self._start = (self._start + 1) % self.capacity
            seq = self._seq
            self._seq += 1
            for name in SPARSE:
                value = sample.get(name)
                if value is not None:
                    sparse = self._sparse.get(name)
                    if sparse is None:
                        sparse = self._sparse[name] = _Sparse()
                    sparse.seqs.append(seq)
                    sparse.values.append(value)
            if full and seq % 256 == 0:
                for sparse in self._sparse.values():
                    sparse.trim(self.first_seq)

    # -- reading -----------------------------------------------------------------------------

    def _times(self) -> array:
        """The time column in logical (oldest first) order; a copy once it has wrapped."""
        t = self._dense["t"]
        return t if self._start == 0 else t[self._start :] + t[: self._start]

    def _column(self, name: str, a: int, b: int) -> array:
        """Logical rows ``a:b`` of a dense column (a copy)."""
        column, n = self._dense[name], len(self)
        if self._start == 0:
            return column[a:b]
        pa, pb = self._start + a, self._start + b
        if pb <= n:
            return column[pa:pb]
        if pa >= n:
            return column[pa - n : pb - n]
        return column[pa:] + column[: pb - n]

    def _rows(self, a: int, b: int) -> list[dict]:
        """Logical rows ``a:b`` as wire dicts, unmeasured figures absent."""
        times = self._column("t", a, b).tolist()
        fast = [
            [int(v) for v in self._column(n, a, b)] for n in DENSE[1:] if n not in self._partial
        ]
        names = [n for n in DENSE if n not in self._partial]
        rows = [dict(zip(names, row, strict=True)) for row in zip(times, *fast, strict=True)]
        for name in self._partial:  # rare: only samples that lacked a statm figure
            for row, value in zip(rows, self._column(name, a, b), strict=True):
                if not math.isnan(value):
                    row[name] = value if name == "t" else int(value)
        base = self.first_seq
        for name, sparse in self._sparse.items():
            lo, hi = sparse.between(base + a, base + b)
            for seq, value in zip(sparse.seqs[lo:hi], sparse.values[lo:hi], strict=True):
                rows[seq - base - a][name] = int(value)
        return rows

    def since(self, t: float | None = None) -> list[dict]:
        """Samples newer than ``t`` (all when None), full resolution."""
        with self.lock:
            first = 0 if t is None else bisect.bisect_right(self._times(), t)
            return self._rows(first, len(self))

    def backfill(
        self, since: float | None = None, window: float | None = None, max_points: int = 2000
    ) -> tuple[list[dict], float]:
        """What a viewer joining now needs to draw ``window`` seconds (all when None) after
        ``since`` (a reconnecting viewer's last sample; None for all): ``(samples, bucket)``.

        ``bucket`` is 0.0 when the samples are every sample of the span (it holds at most
        ``max_points``); otherwise the span is cut into buckets of ``bucket`` seconds (aligned
        to multiples of it) and each bucket gives two samples, at the times of its lowest and
        its highest RSS, carrying the minimum and the maximum of every figure in it
        (``max_points`` samples in all at most, plus the last bucket's samples as they are). The
        complete buckets are cached per (window, max_points, bucket range): viewers who join
        within the same bucket share one computation and one list (do not modify it). The
        oldest bucket is whole, so it may reach up to one bucket before the span."""
        max_points = max(2, int(max_points))
        with self.lock:
            n = len(self)
            if n == 0:
                return [], 0.0
            times = self._times()
            newest = times[n - 1]
            start = -math.inf if window is None else newest - window
            if since is not None:
                start = max(start, since)
            first = bisect.bisect_right(times, start)
            if n - first <= max_points:
                return self._rows(first, n), 0.0
            span = window if window is not None else newest - times[first]
            buckets = max_points // 2
            width = _nice(span / buckets)
            b0 = math.floor(times[first] / width)
            b1 = math.floor(newest / width)  # the bucket still filling: sent as it is
            key = (window, max_points, width, b0, b1)
            reduced = self._cache.get(key)
            if reduced is None:  # whole buckets, so the result depends on the key alone
                whole = bisect.bisect_left(times, b0 * width)
                reduced = self._reduce(times, whole, b0, b1, width)
                self._cache = {key: reduced}  # only the newest: older keys will not come back
            tail = bisect.bisect_left(times, b1 * width, first)
            return reduced + self._rows(tail, n), width

    def _reduce(self, times: array, first: int, b0: int, b1: int, width: float) -> list[dict]:
        """Two samples (min and max of every figure) per bucket ``b0 <= b < b1``."""
        ends = [bisect.bisect_left(times, b * width, first) for b in range(b0 + 1, b1 + 1)]
        bounds = list(zip([first, *ends[:-1]], ends, strict=True))
        n = len(self)
        dense = {name: self._column(name, 0, n) for name in DENSE[1:]}
        sparse = []
        base = self.first_seq
        for name, column in self._sparse.items():
            lo = bisect.bisect_left(column.seqs, base)
            idx = [s - base for s in column.seqs[lo:]]
            sparse.append((name, idx, column.values[lo:]))
        rss = dense["rss"]
        out: list[dict] = []
        for a, b in bounds:
            if a == b:
                continue
            if "rss" in self._partial:  # samples without RSS (tests): the bucket's ends
                lo_i, hi_i = a, b - 1
            else:
                chunk = rss[a:b]
                lo_i = a + chunk.index(min(chunk))
                hi_i = a + chunk.index(max(chunk))
            low = {"t": times[lo_i]}
            high = {"t": times[hi_i]}
            for name, column in dense.items():
                chunk = column[a:b]
                if name in self._partial:
                    chunk = [v for v in chunk if not math.isnan(v)]
                    if not chunk:
                        continue
                low[name], high[name] = int(min(chunk)), int(max(chunk))
            for name, idx, values in sparse:
                i, j = bisect.bisect_left(idx, a), bisect.bisect_left(idx, b)
                if i < j:
                    chunk = values[i:j]
                    low[name], high[name] = int(min(chunk)), int(max(chunk))
            if lo_i == hi_i:
                out.append(high)
            else:
                out.extend((low, high) if lo_i < hi_i else (high, low))
        return out


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


RingBuffer = History  # the name it had while it was a pre-allocated ring
