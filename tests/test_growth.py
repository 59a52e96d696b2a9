"""The growth estimator (dashboard/growth.py): real traces of the leak lab, and synthetic series.

The traces in tests/data/growth/ were recorded by ``benchmarks/bench_verdicts.py --record``:
each scenario x runtime started as Compare starts it (leaky and fixed together, default params),
RSS of the run's process tree and of shared_cache's redis-server read at 10 Hz from /proc for
60 s (or until the leaky run ended), kept at 2 Hz in KiB, with the times the tree's membership
changed and, for the ``-action`` traces, the span of a tool action at 25 s on the fixed run (Node:
a heap snapshot; Python: a 2 s leak report). ``-run2`` traces are a second recording of every
run (the estimator was tuned on the first). Replaying them is deterministic.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from dashboard.growth import Growth, GrowthEstimator
from dashboard.scenarios import SCENARIOS  # the catalogue (test_scenarios pins its order)
from dashboard.slopes import theil_sen

MiB = 2**20
TRACES = sorted((Path(__file__).parent / "data" / "growth").glob("*.json"))


def replay(trace: dict) -> list[tuple[float, Growth]]:
    """Feed a recorded trace as the sampler will, and ask once a second."""
    est = GrowthEstimator(helper=trace["role"] != "main")
    pending = [tuple(q) for q in trace["quiet"]]
    changes = [c[0] for c in trace["members"]]
    out, next_t = [], 1.0
    for t, kib in trace["samples"]:
        for start, end in [q for q in pending if t > q[1]]:
            est.quiet(start, end)  # the server marks a tool action once it has ended
            pending.remove((start, end))
        members = sum(1 for c in changes if c <= t)  # a token that changes with membership
        est.add(t, kib * 1024, members)
        while t >= next_t:
            out.append((next_t, est.estimate(next_t)))
            next_t += 1.0
    return out


def first(timeline: list[tuple[float, Growth]], verdict: str) -> float | None:
    return next((t for t, g in timeline if g.verdict == verdict), None)


def feed(est: GrowthEstimator, f, start: float, end: float, hz: float = 10.0, members=None):
    """Samples of f(t) from start to end at hz; returns one estimate per second."""
    out, n = [], 0
    while True:
        t = start + n / hz
        if t > end:
            return out
        est.add(t, int(f(t)), members(t) if callable(members) else members)
        if n % int(hz) == int(hz) - 1:
            out.append((round(t + 1 / hz, 3), est.estimate(t + 1 / hz)))
        n += 1


# -- real traces ------------------------------------------------------------------------------


def test_every_run_was_recorded():
    names = {p.stem for p in TRACES}
    for scenario in SCENARIOS:
        for runtime in ("python", "node"):
            for variant in ("leaky", "fixed"):
                assert f"{scenario}-{runtime}-{variant}" in names
    assert {"shared_cache-python-fixed-redis", "shared_cache-node-fixed-redis"} <= names
    assert sum(p.stat().st_size for p in TRACES) < 250_000


@pytest.mark.parametrize("path", [p for p in TRACES if "-leaky" in p.name], ids=lambda p: p.stem)
def test_leaky_run_reads_growing_within_15_s_and_stays(path):
    trace = json.loads(path.read_text())
    timeline = replay(trace)
    grew = first(timeline, "growing")
    assert grew is not None and grew <= 15, [(t, g.verdict) for t, g in timeline[:20]]
    after = [(t, g.verdict) for t, g in timeline if t > grew and g.verdict != "growing"]
    assert after == []
    assert timeline[-1][1].bytes_per_min > 0


@pytest.mark.parametrize(
    "path", [p for p in TRACES if "-leaky" not in p.name], ids=lambda p: p.stem
)
def test_fixed_run_and_helper_never_grow_and_settle_by_20_s(path):
    trace = json.loads(path.read_text())
    timeline = replay(trace)
    assert timeline[-1][0] >= 59, "the trace covers the first 60 s"
    grew = [(t, g.bytes_per_min // 1024) for t, g in timeline if g.verdict == "growing"]
    assert grew == []
    settled = first(timeline, "stable")
    assert settled is not None and settled <= 20, [(t, g.verdict) for t, g in timeline[:25]]


@pytest.mark.parametrize(
    "name", ["unbounded_cache-node-fixed-action", "shared_cache-node-fixed-action"]
)
def test_heap_snapshot_jump_needs_its_quiet_span(name):
    # the same real trace without its quiet span: the snapshot's +30 MiB reads as growth
    trace = json.loads((Path(__file__).parent / "data" / "growth" / f"{name}.json").read_text())
    assert trace["quiet"], "the trace marks its heap snapshot"
    assert first(replay(trace), "growing") is None
    assert first(replay({**trace, "quiet": []}), "growing") is not None


# -- synthetic series: given / when / then ------------------------------------------------------


def noise(seed: int, sd: float):
    rng = random.Random(seed)
    return lambda: rng.gauss(0, sd)


def test_flat_series_reads_stable_and_never_growing():
    est, n = GrowthEstimator(), noise(1, 0.05 * MiB)
    timeline = feed(est, lambda t: 40 * MiB + n(), 0, 90)
    assert first(timeline, "growing") is None
    assert first(timeline, "stable") <= 10
    assert abs(timeline[-1][1].bytes_per_min) < 0.5 * MiB


def test_linear_climb_reads_growing_early_with_its_rate():
    est = GrowthEstimator()
    timeline = feed(est, lambda t: 30 * MiB + t * 0.5 * MiB, 0, 60)  # 30 MiB/min
    grew = first(timeline, "growing")
    assert grew is not None and grew <= 12  # patience: growth sustained for 10 s
    assert all(g.verdict == "growing" for t, g in timeline if t >= grew)
    last = timeline[-1][1]
    assert math.isclose(last.bytes_per_min, 30 * MiB, rel_tol=0.05)
    assert last.window_s == pytest.approx(est.window_s, abs=1.5)


def test_slow_leak_on_a_big_process_is_not_growing_but_on_a_small_one_is():
    # the threshold is relative to the level: 6 MiB/min on 2 GiB is drift, on 20 MiB a leak
    big = feed(GrowthEstimator(), lambda t: 2048 * MiB + t * 0.1 * MiB, 0, 60)
    small = feed(GrowthEstimator(), lambda t: 20 * MiB + t * 0.1 * MiB, 0, 60)
    assert first(big, "growing") is None and big[-1][1].verdict == "stable"
    assert small[-1][1].verdict == "growing"


def test_noisy_flat_series_with_gc_spikes_never_reads_growing():
    n = noise(2, 0.3 * MiB)

    def rss(t: float) -> float:
        spike = 40 * MiB if t % 7 < 0.3 else 0  # three samples every 7 s
        return 60 * MiB + n() + spike

    timeline = feed(GrowthEstimator(), rss, 0, 90)
    assert first(timeline, "growing") is None
    assert first(timeline, "shrinking") is None
    assert first(timeline, "stable") <= 20


def test_step_up_in_a_quiet_span_is_not_growth():
    # given a flat process that a heap snapshot makes jump +40 MiB (and stay there)
    def rss(t: float) -> float:
        if 30 <= t < 33:
            return 120 * MiB  # while the snapshot is written
        return 60 * MiB + (40 * MiB if t >= 33 else 0)

    # when the server marks the action as quiet (once it has ended)
    est = GrowthEstimator()
    before = feed(est, rss, 0, 34)
    est.quiet(30, 34)
    after = feed(est, rss, 34.1, 90)
    # then it never reads growing and is stable again
    assert first(before + after, "growing") is None
    assert all(g.verdict == "stable" for t, g in after)
    assert all(abs(g.bytes_per_min) < MiB for t, g in after)

    # and without the quiet span the same series does read growing: the span is what helps
    control = feed(GrowthEstimator(), rss, 0, 90)
    assert max(g.bytes_per_min for t, g in control) > 10 * MiB


def test_quiet_span_marked_in_advance_drops_its_samples():
    est = GrowthEstimator()
    feed(est, lambda t: 50 * MiB, 0, 20)
    est.quiet(20, 25)
    timeline = feed(est, lambda t: 50 * MiB + (500 * MiB if t < 25 else 20 * MiB), 20.1, 60)
    assert first(timeline, "growing") is None
    assert timeline[-1][1].verdict == "stable"


def test_membership_change_is_neither_growth_nor_shrinkage():
    # given a pre-fork server: a master, a worker joining every 4 s (8..36 s), one leaving at 50 s
    def members(t: float) -> frozenset:
        joined = {10 + i for i in range(8) if t >= 8 + 4 * i}
        return frozenset({1} | joined) - ({10} if t >= 50 else frozenset())

    def rss(t: float) -> float:
        return 25 * MiB * len(members(t))

    timeline = feed(GrowthEstimator(), rss, 0, 90, members=members)
    assert first(timeline, "growing") is None
    assert first(timeline, "shrinking") is None
    assert first(timeline, "stable") <= 10
    assert all(abs(g.bytes_per_min) < MiB for t, g in timeline if t >= 10)

    # and without the members the same staircase reads growing: the members are what help
    control = feed(GrowthEstimator(), rss, 0, 90)
    assert first(control, "growing") is not None


def test_growing_tree_keeps_its_rate_across_a_membership_change():
    # every member leaks 6 MiB/min; a member joining adds its level, not its rate
    def members(t: float) -> frozenset:
        return frozenset({1, 2} | ({3} if t >= 30 else set()))

    def rss(t: float) -> float:
        return sum(20 * MiB + t * 0.1 * MiB for _ in members(t))

    timeline = feed(GrowthEstimator(), rss, 0, 60, members=members)
    assert all(g.verdict == "growing" for t, g in timeline if t >= 15)
    rate = timeline[-1][1].bytes_per_min
    assert 12 * MiB * 0.9 <= rate <= 18 * MiB * 1.1


def test_shrinking_series_reads_shrinking():
    def rss(t: float) -> float:
        return 200 * MiB - max(0.0, t - 20) * 1 * MiB  # flat, then frees 60 MiB/min

    timeline = feed(GrowthEstimator(), rss, 0, 80)
    assert first(timeline, "growing") is None
    assert first(timeline, "stable") <= 20
    assert timeline[-1][1].verdict == "shrinking"
    assert timeline[-1][1].bytes_per_min < -50 * MiB


def test_decelerating_start_is_warming_up_then_stable_never_growing():
    # V8 / CPython at start-up: +40 MiB, fast at first, levelling off (time constant 3 s)
    def rss(t: float) -> float:
        return 30 * MiB + 40 * MiB * (1 - math.exp(-t / 3))

    timeline = feed(GrowthEstimator(), rss, 0, 60)
    assert first(timeline, "growing") is None
    assert timeline[5][1].verdict == "warming_up"
    assert first(timeline, "stable") <= 30


def test_leak_after_a_settled_start_reads_growing():
    def rss(t: float) -> float:
        return 30 * MiB + 20 * MiB * (1 - math.exp(-t / 3)) + max(0.0, t - 25) * 0.4 * MiB

    timeline = feed(GrowthEstimator(), rss, 0, 70)
    settled, grew = first(timeline, "stable"), first(timeline, "growing")
    assert settled is not None and grew is not None and settled < 25 < grew <= 45
    assert timeline[-1][1].verdict == "growing"


def test_no_samples_and_to_dict():
    est = GrowthEstimator()
    assert est.estimate(0.0) == Growth(0, "warming_up", 0.0)
    feed(est, lambda t: 10 * MiB + t * MiB, 0, 20)
    d = est.estimate().to_dict()
    assert set(d) == {"bytes_per_min", "verdict", "window_s"}
    assert isinstance(d["bytes_per_min"], int) and isinstance(d["window_s"], float)
    assert d["verdict"] in ("warming_up", "stable", "growing", "shrinking")


def test_memory_is_bounded_and_estimate_cached():
    est = GrowthEstimator()
    feed(est, lambda t: 10 * MiB + (t % 50) * MiB, 0, 3600)
    assert len(est._points) <= 2 * est.window_s + 2
    one = est.estimate()
    assert est.estimate() is one  # nothing new: no new fit


def test_helper_filling_its_cache_is_not_a_leak():
    # given a redis-server whose keys live 10 s: it fills at 45 MiB/min for 13 s, then holds
    def rss(t: float) -> float:
        return 12 * MiB + min(t, 13.0) * 0.75 * MiB

    # when it is watched as a run's helper, it never reads growing and settles by 20 s
    timeline = feed(GrowthEstimator(helper=True), rss, 0, 60)
    assert first(timeline, "growing") is None
    assert first(timeline, "stable") <= 20
    # as a main process the same fill reads growing: the helper option is what helps
    assert first(feed(GrowthEstimator(), rss, 0, 60), "growing") is not None


def test_helper_that_keeps_growing_reads_growing_after_its_patience():
    timeline = feed(GrowthEstimator(helper=True), lambda t: 12 * MiB + t * 0.75 * MiB, 0, 60)
    grew = first(timeline, "growing")
    assert grew is not None and 30 <= grew <= 35


def test_times_on_the_epoch_clock_read_as_from_zero():
    def from_zero(t: float) -> float:
        return 30 * MiB + t * 0.5 * MiB

    t0 = 1_764_000_000.0
    at_zero = feed(GrowthEstimator(), from_zero, 0, 40)
    at_epoch = feed(GrowthEstimator(), lambda t: from_zero(t - t0), t0, t0 + 40)
    assert [g.verdict for _, g in at_epoch] == [g.verdict for _, g in at_zero]


class _EveryPair(GrowthEstimator):
    """The estimator computing every pair's slope at each estimate, as it did before it kept
    each point's slopes (the reference for the cached path)."""

    def _window_slope(self, window):
        return theil_sen([(p.t, p.value, self._segment(p)) for p in window], self.min_gap_s)


class _NeverFlat(GrowthEstimator):
    """The estimator pairing every window's points, flat ones too (the reference for the flat
    path)."""

    def _flat(self, window):
        return False


@pytest.mark.parametrize("seed", range(6))
def test_a_flat_window_is_judged_exactly_as_pairing_its_points_would(seed):
    rnd = random.Random(seed)
    # Given an estimator with the flat path and one without, fed an idle process's RSS: it
    # holds still for tens of seconds, then steps, sometimes across a membership change or a
    # tool action; the value may be a median halfway between two samples
    flat, reference = GrowthEstimator(helper=seed % 2 == 1), _NeverFlat(helper=seed % 2 == 1)
    t, level, members, flats = 1000.0, 30 * MiB, 1, 0
    for step in range(2400):
        t += rnd.choice([0.1, 0.1, 0.05, 0.3])
        if rnd.random() < 0.003:
            level += rnd.choice([4096, -4096, 2 * MiB, 2049])
        members += rnd.random() < 0.001
        if rnd.random() < 0.001:
            start = t - rnd.uniform(0, 10)
            for est in (flat, reference):
                est.quiet(start, t)
        for est in (flat, reference):
            est.add(t, level, members)
        # Then every estimate, once a second, is the same (flat windows were met often)
        if step % 10 == 0:
            window = [p for p in flat._points if p.t >= max(t - 30, flat._since)]
            flats += bool(window) and flat._flat(window)
            assert flat.estimate(t) == reference.estimate(t), (seed, step)
    assert flats > 50


def test_a_level_held_across_membership_changes_is_not_a_flat_window():
    # Given a tree whose members change every 3 s while its total holds still: no two points
    # of one segment are the 4 s apart a slope needs
    flat, reference = GrowthEstimator(), _NeverFlat()
    for i in range(400):
        t = 1000 + i / 10
        for est in (flat, reference):
            est.add(t, 30 * MiB, members=int(t // 3))
    # When both estimate
    # Then the flat path is not taken: there is no slope, as pairing the points finds
    assert flat.estimate(1040.0) == reference.estimate(1040.0)
    assert flat.estimate(1040.0).verdict == "warming_up"


@pytest.mark.parametrize("seed", range(6))
def test_cached_slopes_give_exactly_what_every_pair_gives(seed):
    rnd = random.Random(seed)
    # Given the cached estimator and the every-pair one, fed the same noisy series with steps,
    # membership changes and tool actions (quiet spans, also ones reaching back into the past)
    cached, reference = GrowthEstimator(), _EveryPair()
    t, level, members = 1000.0, 50 * MiB, 1
    slope = rnd.choice([0, 0.1 * MiB, 0.5 * MiB, -0.1 * MiB])  # bytes per second
    for step in range(1200):
        t += rnd.choice([0.1, 0.1, 0.05, 0.3])
        level += slope * 0.1 + rnd.gauss(0, 0.05 * MiB) + (3 * MiB if rnd.random() < 0.01 else 0)
        members += rnd.random() < 0.003
        if rnd.random() < 0.004:
            start = t - rnd.uniform(0, 20)
            end = start + rnd.uniform(0, 5)
            for est in (cached, reference):
                est.quiet(start, end)
        for est in (cached, reference):
            est.add(t, int(level), members)
        # Then every estimate, once a second, is the same
        if step % 10 == 0:
            assert cached.estimate(t) == reference.estimate(t), (seed, step)
