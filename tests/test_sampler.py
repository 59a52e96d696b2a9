"""The sampling loop on its own: one thread, stoppable, spreads the expensive reads; owners
keep a process sampled, only sockets receive it."""

from __future__ import annotations

import collections
import contextlib
import subprocess
import threading
import time

import pytest

from dashboard import errors
from dashboard.holders import group_by_audience
from dashboard.sampler import Sampler
from tests.conftest import spawn_with_pid, wait_for


class Recorder:
    """An ``emit`` that keeps every batch, as the web layer would send it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples: list[tuple[int, dict]] = []
        self.exits: list[dict] = []
        self.receivers: set[str | None] = set()  # who was sent samples or exits

    def __call__(self, event: str, payload: dict | list, to: str | list[str] | None) -> None:
        to = [to] if to is None or isinstance(to, str) else to
        with self.lock:
            if event == "samples":  # a list of batches for the sockets `to`
                self.samples += [(b["pid"], s) for b in payload for s in b["samples"]]
                self.receivers.update(to)
            elif event == "process_exit":
                self.exits.append(payload)
                self.receivers.update(to)

    def detail_per_tick(self) -> collections.Counter:
        with self.lock:
            return collections.Counter(s["t"] for _, s in self.samples if "uss" in s)


def test_detail_reads_of_many_processes_are_spread_over_the_ticks():
    # Given twenty processes watched at the same moment, sampled at 10 Hz, detail at 1 Hz
    children = [subprocess.Popen(["sleep", "60"]) for _ in range(20)]
    record = Recorder()
    sampler = Sampler(interval=0.1, detail_interval=1.0, emit=record)
    try:
        for child in children:
            sampler.watch(child.pid, False, "test")
        sampler.start()
        # When every process has had at least two detail reads
        wait_for(
            lambda: sum(record.detail_per_tick().values()) >= 40,
            timeout=10,
            message="two detail reads per process",
        )
        # Then no tick did more than a few of them (20 over 10 ticks: 2 a tick)
        assert max(record.detail_per_tick().values()) <= 4
    finally:
        sampler.stop()
        for child in children:
            child.kill()
            child.wait()


def test_an_unwatched_process_lingers_then_is_forgotten(allocator):
    # Given a process watched by one viewer, with a short linger
    sampler = Sampler(interval=0.05, linger=0.5)
    sampler.watch(allocator.pid, False, "v1")
    sampler.start()
    try:
        target = sampler.target(allocator.pid)
        wait_for(lambda: len(target.history) >= 3, message="first samples")
        # When the viewer leaves
        sampler.release("v1")
        # Then sampling goes on for the linger (a reconnect would be backfilled) ...
        seen = len(target.history)
        wait_for(lambda: len(target.history) > seen + 3, message="samples while lingering")
        # ... and then the target is dropped
        wait_for(lambda: sampler.target(allocator.pid) is None, message="target forgotten")
    finally:
        sampler.stop()
    assert not sampler.running


def test_exit_is_emitted_once_with_the_last_samples_first(allocator):
    record = Recorder()
    sampler = Sampler(interval=0.05, emit=record)
    sampler.watch(allocator.pid, False, "v1")
    sampler.start()
    try:
        wait_for(lambda: record.samples, message="samples")
        allocator.exit()
        wait_for(lambda: record.exits, message="process_exit")
        assert len(record.exits) == 1 and record.exits[0]["pid"] == allocator.pid
        last_t = record.samples[-1][1]["t"]
        assert record.exits[0]["t"] >= last_t
    finally:
        sampler.stop()


def test_pid_reuse_is_reported_as_such_and_not_mixed_into_the_series():
    # Given a watched process with a few samples
    first = subprocess.Popen(["sleep", "60"])
    record = Recorder()
    sampler = Sampler(interval=0.05, emit=record)
    sampler.watch(first.pid, False, "v1")
    sampler.tick()
    sampler.tick()
    # Create times count in clock ticks (10 ms): the newcomer must be born ticks later to
    # differ, so this is the age the first process needs, not a wait for a condition.
    time.sleep(0.05)
    # When it exits and its PID goes to a new process before the next tick
    first.kill()
    first.wait()
    second = spawn_with_pid(first.pid, ["sleep", "60"])
    try:
        sampler.tick()
        # Then the exit is reported as a reuse, and no sample of the newcomer was recorded
        assert [e["reason"] for e in record.exits] == ["pid reused"]
        target = sampler.target(first.pid)
        assert len(target.history) == 2
        sampler.tick()
        assert len(target.history) == 2
    finally:
        sampler.stop()
        second.kill()
        second.wait()


def test_an_owner_keeps_a_process_sampled_but_only_sockets_receive_it(allocator):
    # Given a process kept by an owner (as a leak-lab run or --pid keeps it), no socket
    record = Recorder()
    sampler = Sampler(interval=0.05, detail_interval=0.1, emit=record)
    sampler.keep(allocator.pid, False, owner="run:r1")
    sampler.start()
    try:
        target = sampler.target(allocator.pid)
        # Then it is recorded, with its latest figures at hand ...
        wait_for(lambda: len(target.history) >= 10, message="samples of an owned process")
        assert sampler.latest(allocator.pid)["rss"] > 0
        # ... but nobody is sent anything, and the expensive detail figures are not read
        assert record.samples == [] and record.receivers == set()
        assert not any("uss" in s for s in target.history.since())
        # When a socket watches it too
        sampler.watch(allocator.pid, False, "sid-1")
        # Then that socket (and only it) receives samples, with the detail figures
        wait_for(lambda: any("uss" in s for _, s in record.samples), message="detail samples")
        assert record.receivers == {"sid-1"}
        # And when the socket leaves, the owner still holds it: no linger, no detail reads
        sampler.unwatch(allocator.pid, False, "sid-1")
        assert target.held and target.idle_since is None
        seen = len(record.samples)
        wait_for(lambda: len(target.history) >= 40, message="samples after the socket left")
        assert len(record.samples) == seen
        # When the process exits, no exit notice goes to anyone (no socket watches)
        allocator.exit()
        wait_for(lambda: target.exited_at is not None, message="the exit to be seen")
        assert record.exits == []
    finally:
        sampler.stop()


def test_the_watch_limit_holds_under_concurrent_watches():
    # Given one socket asking for 12 processes at once, from 12 threads, with a limit of 5
    children = [subprocess.Popen(["sleep", "60"]) for _ in range(12)]
    sampler = Sampler(interval=0.05)
    results: list[object] = []
    start = threading.Barrier(len(children))

    def watch(pid: int) -> None:
        start.wait()
        try:
            sampler.watch(pid, False, "sid-1", limit=5)
            results.append("ok")
        except errors.MemdashError as e:
            results.append(e.code)

    try:
        threads = [threading.Thread(target=watch, args=(c.pid,)) for c in children]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        # Then exactly 5 were granted, the rest refused with too_many_watches
        assert sorted(results) == ["ok"] * 5 + ["too_many_watches"] * 7
        assert sum("sid-1" in t.sockets for t in sampler.targets()) == 5
        # And watching one of those again is not a sixth, while another socket is not limited
        mine = next(t for t in sampler.targets() if "sid-1" in t.sockets)
        sampler.watch(mine.pid, False, "sid-1", limit=5)
        other = next(c.pid for c in children if sampler.target(c.pid) is None)
        with pytest.raises(errors.TooManyWatches):
            sampler.watch(other, False, "sid-1", limit=5)
        sampler.watch(other, False, "sid-2", limit=5)
    finally:
        sampler.stop()
        for child in children:
            child.kill()
            child.wait()


class ListSink:
    """A sink that keeps what it is handed (and can be told to fail)."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.lock = threading.Lock()
        self.samples: list[tuple[int, dict]] = []
        self.exits: list[tuple[int, str]] = []

    def flushed(self, batches):
        with self.lock:
            self.samples += [(target.pid, s) for target, samples in batches for s in samples]
        if self.fail:
            raise RuntimeError("a broken sink")

    def exited(self, target, t, reason):
        with self.lock:
            self.exits.append((target.pid, reason))
        if self.fail:
            raise RuntimeError("a broken sink")


def test_sinks_get_every_held_targets_samples_and_a_broken_one_stops_nothing(allocator, caplog):
    # Given a process kept by an owner only (nobody watches it), a sink, and a broken sink
    record, sink, broken = Recorder(), ListSink(), ListSink(fail=True)
    sampler = Sampler(interval=0.05, emit=record)
    sampler.add_sink(broken)
    sampler.add_sink(sink)
    sampler.keep(allocator.pid, False, owner="cli")
    sampler.start()
    try:
        # Then both sinks get its samples, in order, though no socket receives anything
        wait_for(lambda: len(sink.samples) >= 10, message="samples in the sink")
        times = [s["t"] for _, s in sink.samples]
        assert times == sorted(times) and {pid for pid, _ in sink.samples} == {allocator.pid}
        assert record.samples == []
        # And the broken sink was logged (not once per flush) while sampling went on
        failures = [r for r in caplog.records if "sink" in r.getMessage()]
        assert len(failures) in (1, 2) and len(broken.samples) >= 10
        # When the process exits, every sink is told, after its last samples
        allocator.exit()
        wait_for(lambda: sink.exits, message="exit in the sink")
        assert sink.exits == [(allocator.pid, "exited")] and broken.exits == sink.exits
    finally:
        sampler.stop()


def test_sockets_watching_the_same_targets_share_one_emit():
    children = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    emits: list[tuple[str, tuple[str, ...], tuple[int, ...]]] = []

    def emit(event, payload, to):
        if event == "samples":
            emits.append((event, tuple(sorted(to)), tuple(b["pid"] for b in payload)))

    sampler = Sampler(interval=0.1, flush_interval=0.1, emit=emit)  # a flush every tick
    a, b = (c.pid for c in children)
    try:
        # Given three viewers of the same two processes and one viewer of the first only
        for sid in ("s1", "s2", "s3"):
            sampler.watch(a, False, sid)
            sampler.watch(b, False, sid)
        sampler.watch(a, False, "s4")
        # When the sampler reads and flushes once
        sampler.tick()
        # Then there are two messages: one to the group of three, one to the fourth
        assert sorted(emits) == [
            ("samples", ("s1", "s2", "s3"), (a, b)),
            ("samples", ("s4",), (a,)),
        ]
    finally:
        sampler.stop()
        for child in children:
            child.kill()
            child.wait()


def test_the_overall_target_limit_holds_and_idle_targets_make_room():
    children = [subprocess.Popen(["sleep", "60"]) for _ in range(4)]
    sampler = Sampler(interval=0.05, max_targets=2)
    pids = [c.pid for c in children]
    try:
        # Given two processes held by two viewers (each under its own per-viewer limit)
        sampler.watch(pids[0], False, "s1", limit=32)
        sampler.keep(pids[1], False, owner="run:r1")
        # Then a third is refused to anyone, with the limit's own error
        with pytest.raises(errors.TooManyTargets):
            sampler.watch(pids[2], False, "s2", limit=32)
        with pytest.raises(errors.TooManyTargets):
            sampler.keep(pids[2], False, owner="cli")
        # But holding one that is sampled already is no new target
        sampler.watch(pids[1], False, "s2", limit=32)
        # And once a viewer leaves, its lingering target gives up its place
        sampler.release("s1")
        sampler.watch(pids[3], False, "s2", limit=32)
        assert sorted(t.pid for t in sampler.targets()) == sorted(pids[1:2] + pids[3:4])
    finally:
        sampler.stop()
        for child in children:
            child.kill()
            child.wait()


def test_detail_is_read_every_period_only_while_a_viewer_draws_it():
    # Given a process watched by a viewer that draws RSS only, detail every 10 ticks while
    # drawn and every 50 otherwise (the loop driven tick by tick, no thread)
    child = subprocess.Popen(["sleep", "60"])
    sampler = Sampler(interval=0.1, detail_interval=1.0, background_detail_interval=5.0)
    try:
        target = sampler.watch(child.pid, False, "rss-viewer")
        sampler.draws_detail("rss-viewer", False)

        def detail_reads(ticks: int) -> int:
            seen = len(target.history)
            for _ in range(ticks):
                sampler.tick()
            return sum("uss" in s for s in list(target.history.since())[seen:])

        # Then 100 ticks read its detail only twice (once in five periods)
        assert detail_reads(100) == 2
        # When a viewer that never said what it draws watches it too (as before `draw`)
        sampler.watch(child.pid, False, "old-viewer")
        # Then every period reads it
        assert detail_reads(100) == 10
        # When that viewer says it draws RSS, then the first draws USS
        sampler.draws_detail("old-viewer", False)
        assert detail_reads(100) == 2
        sampler.draws_detail("rss-viewer", True)
        assert detail_reads(100) == 10
        # When the viewer drawing USS leaves, the background rate is back
        sampler.release("rss-viewer")
        assert detail_reads(100) == 2
    finally:
        sampler.stop()
        child.kill()
        child.wait()


def test_sockets_receiving_the_same_batches_share_one_message():
    # Given three targets' batches: x to sockets a and b, y to b only, z to a and b again
    x, y, z = {"pid": 1}, {"pid": 2}, {"pid": 3}
    by_audience = {frozenset("ab"): [x, z], frozenset("b"): [y]}
    # When they are grouped into messages
    messages = {tuple(sorted(sids)): batches for batches, sids in group_by_audience(by_audience)}
    # Then a gets x and z, b gets all three, each in one message
    assert messages == {("a",): [x, z], ("b",): [x, z, y]}
    # And when everyone receives the same, one message goes to all of them, sorted
    assert group_by_audience({frozenset("ba"): [x]}) == [([x], ["a", "b"])]


def test_what_a_tick_emits_is_sent_inside_the_corked_block(allocator):
    # Given a sampler whose ticks are corked (the app's Fanout.corked: one write per viewer)
    log: list[str] = []
    corks = 0

    @contextlib.contextmanager
    def corked():
        nonlocal corks
        corks += 1
        log.append("cork")
        yield
        log.append("uncork")

    sampler = Sampler(interval=0.05, emit=lambda event, p, to: log.append(event), corked=corked)
    try:
        sampler.watch(allocator.pid, False, "s1")
        # When it runs a few ticks
        sampler.start()
        wait_for(lambda: log.count("samples") >= 3, 10, "three flushes")
    finally:
        sampler.stop()
    # Then every emit came between a cork and its uncork, one cork per tick
    depth = 0
    for entry in log:
        depth += {"cork": 1, "uncork": -1}.get(entry, 0)
        assert entry in ("cork", "uncork") or depth == 1, log
    assert corks >= 3 and depth in (0, 1)
