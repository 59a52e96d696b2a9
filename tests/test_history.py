"""The history: grows with its samples up to its capacity, oldest dropped, backfill sized to the
window on screen (min/max kept, shared), absent keys absent."""

from __future__ import annotations

import pytest

from dashboard.history import History, RingBuffer


def test_keeps_the_last_capacity_samples_at_full_rate_and_older_ones_per_second():
    ring = RingBuffer(3)
    for t in range(5):
        ring.append({"t": float(t), "rss": t * 10})
    assert len(ring) == 3
    assert ring.since(1.5) == [{"t": 2.0, "rss": 20}, {"t": 3.0, "rss": 30}, {"t": 4.0, "rss": 40}]
    # One sample a second: each per-second bucket's mean is that sample
    assert ring.since() == [{"t": float(t), "rss": t * 10} for t in range(5)]


def test_since_returns_only_newer_samples_across_the_wrap():
    ring = RingBuffer(4)
    for t in range(10):
        ring.append({"t": float(t), "rss": t})
    assert [s["t"] for s in ring.since(7.0)] == [8.0, 9.0]
    assert [s["t"] for s in ring.since(7.5)] == [8.0, 9.0]
    assert ring.since(9.0) == []
    assert [s["t"] for s in ring.since(0.0)] == [float(t) for t in range(1, 10)]
    assert [s["t"] for s in ring.since(4.5)] == [5.0, 6.0, 7.0, 8.0, 9.0]  # 5.0: per second
    assert len(ring) == 4


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
    history = History(100, seconds=50, minutes=10)
    sizes = {}
    for i in range(5000):
        sample = {"t": float(i), "rss": i, "vms": 2, "shared": 3, "text": 4, "data": 5}
        if i % 10 == 0:
            sample["uss"] = i
        history.append(sample)
        if i in (249, 2499):
            sizes[i] = history.nbytes()
    # Then it keeps the last 100 at full rate, sparse figures where they were measured
    rows = history.since(4899.5)
    assert len(history) == 100 and [r["t"] for r in rows] == [float(i) for i in range(4900, 5000)]
    assert [r["uss"] for r in rows if "uss" in r] == list(range(4900, 5000, 10))
    # And its tiers stop growing at their bounds: memory is flat once they are full
    assert len(history.seconds) <= 50 + history.seconds.batch
    assert len(history.minutes) <= 10 + history.minutes.batch
    assert history.nbytes() <= sizes[2499] * 1.1
    assert sizes[249] < 100 * 6 * 8 * 1.2 + 40 * 16 + 150 * 200


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


# -- tiers: a whole day at 10 Hz ------------------------------------------------------------

DAY = 864_000  # samples: 24 hours at 10 Hz
T0 = 1_764_000_000.0  # a whole minute, so buckets hold samples 10i..10i+9 (a second)
R0, U0, GIB = 100 * 2**20, 60 * 2**20, 2**30
SPIKE = DAY - 20 * 36_000  # the sample 20 hours before the last


def _rss(i: int) -> int:
    """A saw-tooth each second over a slow climb each minute: exact means per bucket."""
    return GIB * 4 if i == SPIKE else R0 + 4096 * (i % 10) + 8192 * (i // 600)


def _mean_rss(t: float) -> float:
    """The mean RSS of the second or minute bucket at (mean) time ``t``, spike aside."""
    return R0 + 4096 * 4.5 + 8192 * ((t - T0) // 60)


@pytest.fixture(scope="module")
def day() -> History:
    """A watched lab worker's day, fed with explicit times (about 5 s): statm every sample,
    detail and language heap once a second, one RSS and USS spike 20 hours ago."""
    history = History(18000)
    append = history.append
    for i in range(DAY):
        rss = _rss(i)
        sample = {"t": T0 + i / 10, "rss": rss, "vms": rss + GIB, "shared": 4096, "text": 8192}
        sample["data"] = rss - 2**20
        if i % 10 == 0:
            uss = 3 * GIB if i == SPIKE else U0 + 1000 * (i // 10 % 6)
            sample.update(uss=uss, pss=uss, swap=0, anon=uss, heap_used=uss // 2)
            sample.update(heap_total=uss, external=4096)
        append(sample)
    return history


def test_a_day_at_10_hz_costs_at_most_4_mib(day):
    # Given 24 hours of a lab worker at 10 Hz (12 figures), When it is all appended
    # Then the full rate covers the last 30 minutes, the tiers the rest, in under 4 MiB
    assert 18000 * 63 // 64 <= len(day) <= 18000
    assert len(day.seconds) >= 7200
    assert abs(len(day.minutes) * 60 + len(day.seconds) + len(day) / 10 - 86400) <= 60
    assert day.nbytes() <= 4 * 2**20


def test_the_all_window_of_a_day_keeps_a_one_sample_spike_of_20_hours_ago(day):
    # When a viewer asks for the whole session on a 2000-point chart
    samples, bucket = day.backfill(window=None, max_points=2000)
    # Then it gets at most 2000 samples (plus the bucket still filling), in time order
    assert 60 <= bucket <= 200 and len(samples) <= 2000 + bucket * 10 + 1
    times = [s["t"] for s in samples]
    assert times == sorted(times) and times[0] < T0 + bucket and times[-1] == T0 + 86399.9
    # And the spike is there as a max, at its time (within its bucket), as are the lows
    top = max(samples, key=lambda s: s["rss"])
    assert top["rss"] == 4 * GIB and abs(top["t"] - (T0 + SPIKE / 10)) < bucket
    assert max(s["uss"] for s in samples if "uss" in s) == 3 * GIB
    assert min(s["rss"] for s in samples) == R0
    assert day.backfill(window=None, max_points=2000)[0] is not samples  # tail fresh...
    assert day.backfill(window=None, max_points=2000)[0][0] is samples[0]  # ...buckets cached


def test_tier_means_are_the_means_of_their_samples(day):
    # When the per-minute and per-second means of RSS and USS are read
    rss = day.coarse("rss")
    uss = day.coarse("uss", since=T0 + 43200)
    # Then there is one per bucket, older than the full-rate samples, in time order
    first = day.since(day.since()[-len(day)]["t"] - 1e-6)[0]["t"]
    assert len(rss) == len(day.minutes) + len(day.seconds)
    assert [t for t, _ in rss] == sorted(t for t, _ in rss) and rss[-1][0] < first
    assert all(t > T0 + 43200 for t, _ in uss)
    # And each is exact: the saw-tooth's mean over the minute's climb (the spike's minute
    # holds one sample of 4 GiB among 600)
    spike_minute = (SPIKE // 600) * 60 + T0
    for t, mean in rss:
        expected = _mean_rss(t)
        if spike_minute <= t < spike_minute + 60:
            expected += (4 * GIB - (R0 + 8192 * (SPIKE // 600))) / 600
        assert mean == pytest.approx(expected, rel=1e-12), t
    # (a second holds one USS reading; a minute, six values ten times: the newest minute may
    # hold only the seconds folded on so far)
    per_second, newest_minute = day.seconds.t[0], day.minutes.t[-1]
    for t, mean in uss:
        if t >= per_second:
            assert mean == U0 + 1000 * (int(t - T0) % 6)
        elif t < newest_minute:
            assert mean == U0 + 2500
    # And since() gives the same means, as ints, one sample per bucket before the full rate
    rows = day.since(T0 + 86400 - 3 * 3600)
    tiered = [r for r in rows if r["t"] < first]
    assert len(tiered) + len(day) == len(rows) and len(tiered) > 3000
    assert all(r["rss"] == round(_mean_rss(r["t"])) for r in tiered)


def test_a_recent_window_backfills_as_if_there_were_no_tiers(day):
    # Given a history fed only the last 30 minutes of the same day
    fresh = History(18000)
    for row in day.since(day.since()[-len(day)]["t"] - 1e-6):
        fresh.append(row)
    # When both are asked for the last 10 minutes and for the last 2 (full resolution)
    # Then they answer the same: the tiers change nothing inside the full-rate window
    assert day.backfill(window=600, max_points=2000) == fresh.backfill(window=600, max_points=2000)
    assert day.backfill(window=120) == fresh.backfill(window=120)
    assert day.backfill(window=120)[1] == 0.0


def test_a_window_past_the_full_rate_reads_the_tier_it_needs(day):
    # When a viewer asks for the last 2 hours (full rate, then per-second buckets)
    samples, bucket = day.backfill(window=7200, max_points=2000)
    # Then the buckets are the window's (10 s), and no minute was read
    assert bucket == 10 and len(samples) <= 2000 + 100 + 1
    assert samples[0]["t"] >= T0 + 86400 - 7200 - 10
    # When it asks for 6 hours, the oldest of which are per-minute buckets
    samples, bucket = day.backfill(window=6 * 3600, max_points=2000)
    assert bucket == 60 and samples[0]["t"] >= T0 + 86400 - 6 * 3600 - 60
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)


def test_small_tiers_fold_on_and_drop_the_oldest():
    # Given a history of 4 samples, 3 per-second and 2 per-minute buckets, fed at 4 Hz
    history = History(4, seconds=3, minutes=2)
    for i in range(4 * 600):  # 10 minutes
        history.append({"t": 60.0 + i / 4, "rss": 100 + i % 4, "vms": 1, "shared": 1})
    # Then the oldest minutes are gone, the kept ones hold 240 samples each
    assert len(history.minutes) <= 2 + history.minutes.batch
    assert list(history.minutes.n)[:-1] == [240] * (len(history.minutes) - 1)
    low, high = history.minutes.figures["rss"].lo[0], history.minutes.figures["rss"].hi[0]
    assert (low, high) == (100, 103)
    assert history.coarse("rss")[0][1] == 101.5 and history.coarse("text") == []
    # And since() is ordered minutes, seconds, full rate, each figure only where measured
    rows = history.since()
    assert [r["t"] for r in rows] == sorted(r["t"] for r in rows)
    assert all("text" not in r and r["vms"] == 1 for r in rows)
