"""The history: grows with its samples up to its capacity, oldest dropped, backfill sized to the
window on screen (min/max kept, shared), absent keys absent."""

from __future__ import annotations

import pytest

from dashboard.history import History, RingBuffer


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


def test_columns_grow_with_their_samples_then_wrap():
    # Given a history that may hold 30 minutes at 10 Hz
    history = History(18000)
    history.append({"t": 0.0, "rss": 1, "vms": 2, "shared": 3, "text": 4, "data": 5})
    small = history.nbytes()
    # Then one sample costs bytes, not the 2 MB of a pre-allocated ring
    assert small < 1000
    # When it fills past its capacity, with detail figures once in ten samples
    history = History(100)
    for i in range(250):
        sample = {"t": float(i), "rss": i, "vms": 2, "shared": 3, "text": 4, "data": 5}
        if i % 10 == 0:
            sample["uss"] = i
        history.append(sample)
    # Then it keeps the last 100, sparse figures where they were measured, and stops growing
    rows = history.since()
    assert [r["t"] for r in rows] == [float(i) for i in range(150, 250)]
    assert [r["uss"] for r in rows if "uss" in r] == list(range(150, 250, 10))
    assert history.nbytes() < 100 * 6 * 8 * 1.2 + 40 * 16


def _series(n: int, spike_at: int | None = None) -> History:
    history = History(n)
    for i in range(n):
        rss = 10_000 if i == spike_at else 1000 + i % 7
        sample = {"t": 1000.0 + i * 0.1, "rss": rss, "vms": 5, "shared": 1, "text": 1, "data": 1}
        if spike_at is not None and i == spike_at + 1:
            sample["uss"] = 9_500
        elif i % 10 == 0:
            sample["uss"] = 500
        history.append(sample)
    return history


def test_backfill_is_full_resolution_when_the_window_holds_few_samples():
    history = _series(3000)
    samples, bucket = history.backfill(window=60, max_points=2000)
    assert bucket == 0.0
    assert len(samples) == 600 and samples == history.since(samples[0]["t"] - 0.05)


def test_backfill_of_a_long_window_is_bounded_and_keeps_spikes():
    # Given 30 minutes at 10 Hz, with one sample spiking in RSS and one in USS
    history = _series(18000, spike_at=12345)
    # When a viewer joins with a 30-minute window
    samples, bucket = history.backfill(window=1800, max_points=2000)
    # Then it gets at most 2000 samples (plus the bucket still filling), in time order
    assert bucket > 0 and len(samples) <= 2000 + bucket * 10 + 1
    times = [s["t"] for s in samples]
    assert times == sorted(times) and times[-1] == history.since()[-1]["t"]
    # And both spikes are still there, as are the lows
    assert max(s["rss"] for s in samples) == 10_000
    assert max(s.get("uss", 0) for s in samples) == 9_500
    assert min(s["rss"] for s in samples) == 1000


def test_backfill_is_computed_once_for_viewers_joining_together():
    history = _series(18000)
    first, bucket = history.backfill(window=1800)
    # When a sample arrives in the same (2 s) bucket before the next viewer joins
    newest = first[-1]["t"]
    assert int((newest + 0.05) / bucket) == int(newest / bucket)
    history.append({"t": newest + 0.05, "rss": 1, "vms": 5, "shared": 1, "text": 1, "data": 1})
    second, _ = history.backfill(window=1800)
    # Then the complete buckets are the very same objects; only the bucket still filling grew
    shared = len(first) - 20
    assert all(a is b for a, b in zip(first[:shared], second[:shared], strict=True))
    assert second[-1]["t"] == newest + 0.05 and len(second) == len(first) + 1


def test_backfill_since_returns_only_newer_samples():
    history = _series(3000)
    last = history.since()[-50]["t"]
    samples, bucket = history.backfill(since=last, window=300)
    assert bucket == 0.0 and len(samples) == 49 and samples[0]["t"] > last
    assert history.backfill(window=None, max_points=10)[1] > 0
    assert History(5).backfill() == ([], 0.0)
