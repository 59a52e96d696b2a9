"""Robust slopes of a series of (t, value, segment) points (pure, stdlib only): Theil–Sen, and
the standard error its noise gives a fitted slope. Points of different segments (a process
tree's membership changed between them, a tool action lay between them) are never paired.
:class:`Point` is one point of a growth estimator, with the slopes it keeps.
"""

from __future__ import annotations

import statistics


def theil_sen(points: list[tuple[float, float, int]], min_dt: float = 0.0) -> float | None:
    """Median of the pairwise slopes of (t, value, segment) points, pairs within one segment
    and at least ``min_dt`` apart; None when there is no such pair."""
    slopes = []
    for i, (ti, vi, si) in enumerate(points):
        for tj, vj, sj in points[i + 1 :]:
            if sj == si and tj - ti >= min_dt and tj > ti:
                slopes.append((vj - vi) / (tj - ti))
    return statistics.median(slopes) if slopes else None


def slope_error(points: list[tuple[float, float, int]]) -> float:
    """The standard error of a slope fitted to these points, from their noise: the robust
    scale (MAD) of second differences of neighbours, which a trend or a smooth curve does not
    inflate (white noise of sd s gives second differences of sd s * sqrt(6))."""
    second = [
        b[1] * 2 - a[1] - c[1]
        for a, b, c in zip(points, points[1:], points[2:], strict=False)
        if a[2] == b[2] == c[2]
    ]
    span = points[-1][0] - points[0][0]
    if len(second) < 3 or span <= 0:
        return 0.0
    centre = statistics.median(second)
    sigma = 1.4826 * statistics.median(abs(d - centre) for d in second) / 6**0.5
    return sigma * (12 / len(points)) ** 0.5 / span


class Point:
    """One bucket's median. ``row`` caches its slopes to the earlier points of its segment
    (see GrowthEstimator._window_slope)."""

    __slots__ = ("first", "last", "value", "t", "seq", "row")

    def __init__(self, first: float, last: float, value: float, seq: int) -> None:
        self.first = first  # time of the bucket's first sample
        self.last = last  # time of its last sample
        self.value = value  # the median of its samples
        self.t = (first + last) / 2
        self.seq = seq  # consecutive along the estimator's points
        self.row: tuple[int, int, list[float]] | None = None  # (layout, first seq, slopes)
