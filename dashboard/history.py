"""Fixed-size history of samples for one watched process, and backfill for a new viewer.

Samples are stored column by column in ``array('d')`` (8 bytes a figure, NaN where a figure
was not measured), so 30 minutes at 10 Hz cost about 2 MB per process and the server's memory
stops growing once the ring is full.
"""

from __future__ import annotations

import math
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
_NAN = float("nan")


class RingBuffer:
    """The last ``capacity`` samples, oldest first; samples must arrive in time order."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._columns = {name: array("d", [_NAN]) * capacity for name in FIELDS}
        self._start = 0  # physical index of the oldest sample
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, sample: dict) -> None:
        if self._count < self.capacity:
            index = (self._start + self._count) % self.capacity
            self._count += 1
        else:  # full: overwrite the oldest
            index = self._start
            self._start = (self._start + 1) % self.capacity
        for name, column in self._columns.items():
            column[index] = sample.get(name, _NAN)

    def _physical(self, logical: int) -> int:
        return (self._start + logical) % self.capacity

    def _first_after(self, t: float) -> int:
        """Logical index of the first sample with time > t (binary search)."""
        times = self._columns["t"]
        lo, hi = 0, self._count
        while lo < hi:
            mid = (lo + hi) // 2
            if times[self._physical(mid)] <= t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _row(self, logical: int) -> dict:
        i = self._physical(logical)
        sample = {}
        for name, column in self._columns.items():
            value = column[i]
            if not math.isnan(value):
                sample[name] = value if name == "t" else int(value)
        return sample

    def since(self, t: float | None = None) -> list[dict]:
        """Samples newer than ``t`` (all when None), as wire dicts without unmeasured keys."""
        first = 0 if t is None else self._first_after(t)
        return [self._row(logical) for logical in range(first, self._count)]
