"""The ring buffer: fixed size, oldest dropped, backfill since a time, absent keys absent."""

from __future__ import annotations

import pytest

from dashboard.history import RingBuffer


def test_keeps_the_last_capacity_samples_in_order():
    ring = RingBuffer(3)
    for t in range(5):
        ring.append({"t": float(t), "rss": t * 10})
    assert len(ring) == 3
    assert ring.since() == [{"t": 2.0, "rss": 20}, {"t": 3.0, "rss": 30}, {"t": 4.0, "rss": 40}]


def test_since_returns_only_newer_samples_across_the_wrap():
    ring = RingBuffer(4)
    for t in range(10):
        ring.append({"t": float(t), "rss": t})
    assert [s["t"] for s in ring.since(7.0)] == [8.0, 9.0]
    assert [s["t"] for s in ring.since(7.5)] == [8.0, 9.0]
    assert ring.since(9.0) == []
    assert [s["t"] for s in ring.since(0.0)] == [6.0, 7.0, 8.0, 9.0]


def test_unmeasured_figures_are_absent_not_null():
    ring = RingBuffer(2)
    ring.append({"t": 1.0, "rss": 5})
    ring.append({"t": 2.0, "rss": 6, "uss": 3, "heap_used": 2})
    first, second = ring.since()
    assert first == {"t": 1.0, "rss": 5}
    assert second == {"t": 2.0, "rss": 6, "uss": 3, "heap_used": 2}


def test_empty_and_invalid():
    ring = RingBuffer(1)
    assert ring.since() == [] and len(ring) == 0
    with pytest.raises(ValueError):
        RingBuffer(0)
