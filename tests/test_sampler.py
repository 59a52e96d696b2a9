"""The sampling loop on its own: one thread, stoppable, spreads the expensive reads; owners
keep a process sampled, only sockets receive it."""

from __future__ import annotations

import collections
import subprocess
import threading
import time

import pytest

from dashboard import errors
from dashboard.sampler import Sampler
from tests.conftest import spawn_with_pid, wait_for


class Recorder:
    """An ``emit`` that keeps every batch, as the web layer would send it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples: list[tuple[int, dict]] = []
        self.exits: list[dict] = []
        self.receivers: set[str | None] = set()  # who was sent samples or exits

    def __call__(self, event: str, payload: dict | list, to: str | None) -> None:
        with self.lock:
            if event == "samples":  # a list of batches for the socket `to`
                self.samples += [(b["pid"], s) for b in payload for s in b["samples"]]
                self.receivers.add(to)
            elif event == "process_exit":
                self.exits.append(payload)
                self.receivers.add(to)

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
