"""The history of one sampled series: full-rate columns, then per-second and per-minute tiers.

Full rate for the recent window: columns are ``array('d')`` that grow with their samples up to
``capacity`` (``--history`` / interval), then wrap. The fast figures every sample carries
(time and statm) are dense columns, 48 bytes a sample; the rest (USS/PSS/swap/anon about once
a second, language heap, descendant count) are sparse columns of (sequence number, value).
Before the window wraps over samples they are folded, a batch at a time (at most 1/64 of the
window, so it holds at least 63/64 of ``capacity``), into the per-second tier (tiers.py:
min/mean/max of every figure; 2 hours), whose oldest buckets fold into the per-minute tier
(7 days; older ones are dropped): 24 hours at 10 Hz cost under 4 MiB (``nbytes()``).

What a joining viewer gets (:meth:`History.backfill`) is sized in backfill.py.
"""

from __future__ import annotations

import bisect
import math
import operator
import sys
import threading
from array import array

from .backfill import Backfill
from .memory import SAMPLE_FIELDS, STATM_FIELDS
from .tiers import Tier

FIELDS = SAMPLE_FIELDS  # every figure a sample may carry, "t" (its time) first
DENSE = ("t", *STATM_FIELDS)  # in every sample (memory.StatmReader)
SPARSE = FIELDS[len(DENSE) :]
_NAN = float("nan")
_dense_values = operator.itemgetter(*DENSE)  # in C: the hot path of every sample


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


SECONDS_KEPT = 2 * 3600  # per-second buckets: 2 hours
MINUTES_KEPT = 7 * 24 * 60  # per-minute buckets: 7 days
_HEADER = sys.getsizeof(array("d"))  # an array object without its buffer


class History(Backfill):
    """The samples of a series, oldest first (they arrive in time order): the last
    ``capacity`` at full rate, older ones as per-second then per-minute buckets (``seconds``
    and ``minutes`` of them at most).

    Appends come from the sampler thread; reads may come from any thread (the sampler holds
    its lock around appends, and readers copy what they need under ``self.lock``)."""

    def __init__(self, capacity: int, seconds: int = SECONDS_KEPT, minutes: int = MINUTES_KEPT):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._dense = {name: array("d") for name in DENSE}
        self._sparse: dict[str, _Sparse] = {}
        self._partial: set[str] = set()  # dense columns some sample lacked (tests, odd reads)
        self._start = 0  # physical index of the oldest full-rate sample, once the columns wrapped
        self._seq = 0  # sequence number of the next sample (samples ever appended)
        self._first = 0  # sequence number of the oldest full-rate sample (older ones: tiers)
        # Folding a batch at once lets min()/max()/sum() run over slices (C, not Python); a
        # batch is at most 1/64 of the window, so the window is at least 63/64 full.
        self._batch = max(1, min(256, capacity // 64))
        self.minutes = Tier(60.0, minutes)
        self.seconds = Tier(1.0, seconds, then=self.minutes)
        self.lock = threading.Lock()
        self._cache: dict[tuple, tuple[list[dict], float]] = {}

    def __len__(self) -> int:
        """Full-rate samples held (the tiers' buckets not counted)."""
        return self._seq - self._first

    @property
    def version(self) -> int:
        """Samples ever appended: what a backfill returns changes only when this does."""
        return self._seq

    def nbytes(self) -> int:
        """Bytes the columns' buffers have allocated, full rate and tiers: what the history of
        a watched process costs (for benchmarks and tests)."""
        columns = [*self._dense.values(), *self.seconds.columns(), *self.minutes.columns()]
        for sparse in self._sparse.values():
            columns += (sparse.seqs, sparse.values)
        return sum(sys.getsizeof(c) - _HEADER for c in columns)

    def append(self, sample: dict) -> None:
        with self.lock:
            held = self._seq - self._first
            if held == self.capacity:
                self._fold(self._batch)
                held -= self._batch
            pos = self._start + held
            if pos >= self.capacity:
                pos -= self.capacity
            grow = pos == len(self._dense["t"])
            try:
                values = _dense_values(sample)
            except KeyError:
                values = (None,)
            found = len(DENSE)
            if None in values:  # a sample without some fast figure (tests, odd reads)
                missing = [name for name in DENSE if sample.get(name) is None]
                self._partial.update(missing)
                values = tuple(_NAN if name in missing else sample[name] for name in DENSE)
                found -= len(missing)
            if grow:
                for column, value in zip(self._dense.values(), values, strict=True):
                    column.append(value)
            else:
                for column, value in zip(self._dense.values(), values, strict=True):
                    column[pos] = value
            seq = self._seq
            self._seq += 1
            for name in SPARSE if len(sample) > found else ():  # one sample in ten, or fewer
                value = sample.get(name)
                if value is not None:
                    sparse = self._sparse.get(name)
                    if sparse is None:
                        sparse = self._sparse[name] = _Sparse()
                    sparse.seqs.append(seq)
                    sparse.values.append(value)
            if self._first and seq % 256 == 0:
                for sparse in self._sparse.values():
                    sparse.trim(self._first)

    def _fold(self, k: int) -> None:
        """Fold the oldest ``k`` full-rate samples into the per-second tier."""
        base = self._first
        dense = {name: self._column(name, 0, k).tolist() for name in DENSE[1:]}
        sparse = {}
        for name, column in self._sparse.items():
            i, j = column.between(base, base + k)
            if i < j:
                sparse[name] = (column.seqs[i:j], column.values[i:j].tolist())
        self.seconds.absorb(self._column("t", 0, k), dense, self._partial, sparse, base)
        self._first += k
        self._start = (self._start + k) % self.capacity

    # -- reading -----------------------------------------------------------------------------

    def _times(self) -> array:
        """The full-rate time column in logical (oldest first) order; a copy once it wrapped."""
        t = self._dense["t"]
        return t if self._start == 0 and len(t) == len(self) else self._column("t", 0, len(self))

    def _column(self, name: str, a: int, b: int) -> array:
        """Logical rows ``a:b`` of a dense column (a copy)."""
        column = self._dense[name]
        size = len(column)
        pa, pb = self._start + a, self._start + b
        if pb <= size:
            return column[pa:pb]
        if pa >= size:
            return column[pa - size : pb - size]
        return column[pa:] + column[: pb - size]

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
        base = self._first
        for name, sparse in self._sparse.items():
            lo, hi = sparse.between(base + a, base + b)
            for seq, value in zip(sparse.seqs[lo:hi], sparse.values[lo:hi], strict=True):
                rows[seq - base - a][name] = int(value)
        return rows

    def since(self, t: float | None = None) -> list[dict]:
        """Samples newer than ``t`` (all when None): every full-rate sample, and before them
        one sample per per-minute, then per-second bucket carrying each figure's mean (an
        int), at the mean time of the bucket's samples (see ``backfill`` for min/max)."""
        with self.lock:
            rows = self.minutes.means(self.minutes.after(t))
            rows += self.seconds.means(self.seconds.after(t))
            first = 0 if t is None else bisect.bisect_right(self._times(), t)
            return rows + self._rows(first, len(self))

    def coarse(self, field: str, since: float | None = None) -> list[tuple[float, float]]:
        """``(t, mean)`` of ``field`` per tier bucket newer than ``since``, oldest first: the
        per-minute buckets, then the per-second ones, where ``field`` was measured; ``t`` is the
        mean time of the bucket's samples. Only what is older than the full-rate samples (read
        those with ``since``): for an estimate over hours (a slow leak); nothing calls it yet."""
        with self.lock:
            return self.minutes.coarse(field, since) + self.seconds.coarse(field, since)


RingBuffer = History  # the name it had while it was a pre-allocated ring
