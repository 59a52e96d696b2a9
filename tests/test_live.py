"""The real server, a real Socket.IO client: watching, live samples, exit, reuse, backfill."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from dashboard.testing import Server, Viewer, wait_for
from tests.conftest import MiB, process_age, spawn_with_pid


def test_watch_acks_history_then_streams_live_samples(viewer, allocator):
    # Given a viewer watching a child
    ack = viewer.call("watch", {"pid": allocator.pid})
    assert ack["pid"] == allocator.pid
    assert ack["process"]["name"].startswith("python")
    assert isinstance(ack["samples"], list)
    first = viewer.next("samples", where=lambda p: p["pid"] == allocator.pid)
    base = first["samples"][-1]["rss"]
    # When the child allocates 80 MiB
    allocator.alloc(80)
    # Then live samples show it
    grown = viewer.next(
        "samples",
        where=lambda p: p["pid"] == allocator.pid and p["samples"][-1]["rss"] > base + 70 * MiB,
    )
    sample = grown["samples"][-1]
    assert {"t", "rss", "vms", "shared", "text", "data"} <= sample.keys()


def test_detail_figures_arrive_about_once_a_second(viewer, allocator):
    viewer.call("watch", {"pid": allocator.pid})
    detail = viewer.next(
        "samples",
        timeout=5,
        where=lambda p: p["pid"] == allocator.pid and any("uss" in s for s in p["samples"]),
    )
    sample = next(s for s in detail["samples"] if "uss" in s)
    assert {"uss", "pss", "swap", "anon"} <= sample.keys()
    assert 0 < sample["uss"] <= sample["rss"]


def test_detail_comes_every_period_only_while_the_viewer_draws_it(allocator):
    # Given a server that reads detail every 0.1 s while drawn, and otherwise only in its
    # first period (the background period is 600 s), and a viewer drawing RSS
    with Server("--detail-interval", "0.1", "--background-detail-interval", "600") as server:
        flags: list[bool] = []  # per sample received: did it carry the detail figures?
        viewer = Viewer(server.url, keep=False, on_samples=lambda _at, batch: flags.extend(
            "uss" in s for s in batch["samples"]))  # fmt: skip
        try:
            assert viewer.call("draw", {"fields": ["rss"]}) == {"ok": True, "detail": False}
            viewer.call("watch", {"pid": allocator.pid})
            # When 2 s of samples have arrived, then at most one carried detail figures
            wait_for(lambda: len(flags) >= 40, message="2 s of samples")
            assert sum(flags) <= 1
            # When it draws heap + anon (one of the detail figures)
            assert viewer.call("draw", {"fields": ["anon"]})["detail"] is True
            # Then they come every period
            wait_for(lambda: sum(flags) >= 10, message="ten detail samples")
            # And a draw of an unknown field is refused, changing nothing
            bad = viewer.call("draw", {"fields": ["rss", "secret"]})
            assert bad["error"]["code"] == "bad_request"
            assert viewer.call("draw", "rss")["error"]["code"] == "bad_request"
            seen = sum(flags)
            wait_for(lambda: sum(flags) >= seen + 5, message="detail still")
        finally:
            viewer.close()


def test_a_viewer_gets_about_ten_messages_a_second_whatever_it_watches(viewer, make_allocator):
    # Given a viewer of five processes, sampled at 20 Hz by the test server
    children = [make_allocator() for _ in range(5)]
    for child in children:
        viewer.call("watch", {"pid": child.pid})
    viewer.next("samples", where=lambda p: p["pid"] == children[-1].pid)
    # When it listens for two seconds
    start_messages = viewer.messages["samples"]
    batches = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        batches.append(viewer.next("samples"))
    messages = viewer.messages["samples"] - start_messages
    # Then it got every process's samples in about 10 messages a second, not 5 x 20
    assert {b["pid"] for b in batches} == {c.pid for c in children}
    assert messages <= 2.0 * 11
    assert sum(len(b["samples"]) for b in batches) >= 5 * 2.0 * 20 * 0.7


def test_exit_is_reported_to_the_watchers(viewer, allocator):
    viewer.call("watch", {"pid": allocator.pid})
    viewer.next("samples", where=lambda p: p["pid"] == allocator.pid)
    allocator.exit(0)
    gone = viewer.next("process_exit", where=lambda p: p["pid"] == allocator.pid)
    # The sampler notices within a tick (50 ms): far too soon for the PID to come round again.
    assert gone["reason"] == "exited"
    assert gone["t"] > 0


def test_children_are_summed_when_asked(viewer, allocator):
    # Given a parent whose child holds memory (the allocator is a child of this test process)
    ack = viewer.call("watch", {"pid": os.getpid(), "children": True})
    assert ack["children"] is True
    allocator.alloc(40)
    batch = viewer.next(
        "samples",
        timeout=8,
        where=lambda p: (
            p["pid"] == os.getpid()
            and p["children"]
            and any(s.get("children", 0) >= 1 for s in p["samples"])
        ),
    )
    assert batch["samples"][-1]["children"] >= 1


def test_reconnecting_viewer_gets_the_gap_backfilled(server, allocator):
    # Given a viewer that saw samples up to time t, then dropped off
    first = Viewer(server.url)
    first.call("watch", {"pid": allocator.pid})
    last_t = first.next("samples", where=lambda p: p["pid"] == allocator.pid)["samples"][-1]["t"]
    first.close()
    # When it comes back a moment later and asks for what it missed
    time.sleep(0.5)  # the gap to be backfilled (not a wait for a condition)
    again = Viewer(server.url)
    try:
        ack = again.call("watch", {"pid": allocator.pid, "since": last_t})
        # Then the ack holds the samples from the gap, all newer than t, without a hole
        times = [s["t"] for s in ack["samples"]]
        assert times and times[0] > last_t
        assert times[0] - last_t < 0.5
        assert len(times) >= 5
        assert all(b - a < 0.5 for a, b in zip(times, times[1:], strict=False))
    finally:
        again.close()


def test_one_sampler_serves_many_viewers(server, viewer_factory, allocator):
    viewers = [viewer_factory() for _ in range(5)]
    for v in viewers:
        v.call("watch", {"pid": allocator.pid})
    batches = [v.next("samples", where=lambda p: p["pid"] == allocator.pid) for v in viewers]
    # every viewer gets the same samples: one sampler, one series
    stamps = [b["samples"][-1]["t"] for b in batches]
    assert max(stamps) - min(stamps) < 1.0


def test_a_stalled_viewer_does_not_delay_the_others(server, viewer_factory, allocator):
    # Given one viewer that connects properly, watches the process, then never reads again
    import websocket

    stalled = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=5
    )
    try:
        assert stalled.recv().startswith("0")  # engine.io open
        stalled.send("40")  # join the default namespace
        stalled.send(f'420["watch",{{"pid":{allocator.pid}}}]')
        healthy = viewer_factory()
        healthy.call("watch", {"pid": allocator.pid})
        # Then the healthy viewer still gets a steady stream
        count = 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            healthy.next("samples", where=lambda p: p["pid"] == allocator.pid)
            count += 1
        assert count >= 10
    finally:
        stalled.close()


def test_system_memory_is_pushed_every_second(viewer):
    first = viewer.next("system", timeout=5)
    assert {"total", "available", "used", "swap_total", "swap_used"} <= first.keys()
    second = viewer.next("system", timeout=5)
    assert second["t"] > first["t"]


def test_unwatch_stops_samples(viewer, make_allocator):
    allocator, other = make_allocator(), make_allocator()
    viewer.call("watch", {"pid": allocator.pid})
    viewer.call("watch", {"pid": other.pid})
    viewer.next("samples", where=lambda p: p["pid"] == allocator.pid)
    assert viewer.call("unwatch", {"pid": allocator.pid}) == {"pid": allocator.pid, "ok": True}
    unwatched = time.time()
    # A flush that began before the unwatch may still deliver a batch of the PID. The sampler
    # flushes from one thread, so once a sample taken after the unwatch arrives (the other
    # PID's), every such straggler has been sent before it.
    viewer.next(
        "samples", where=lambda p: p["pid"] == other.pid and p["samples"][-1]["t"] > unwatched
    )
    while not viewer.events["samples"].empty():
        viewer.events["samples"].get_nowait()
    with pytest.raises(AssertionError):
        viewer.next("samples", timeout=1, where=lambda p: p["pid"] == allocator.pid)


def test_rest_samples_of_a_watched_pid_return_history(server, viewer, allocator):
    viewer.call("watch", {"pid": allocator.pid})
    viewer.next("samples", where=lambda p: p["pid"] == allocator.pid)
    body = wait_for(
        lambda: (
            (r := server.get(f"/api/processes/{allocator.pid}/samples").json())
            and len(r["samples"]) >= 3
            and r
        ),
        message="history over REST",
    )
    t = body["samples"][1]["t"]
    later = server.get(f"/api/processes/{allocator.pid}/samples", params={"since": t}).json()
    assert all(s["t"] > t for s in later["samples"])


def test_pid_reuse_is_a_new_series(server, viewer):
    # Given a watched process
    first = subprocess.Popen(["sleep", "30"])
    ack = viewer.call("watch", {"pid": first.pid})
    viewer.next("samples", where=lambda p: p["pid"] == first.pid)
    wait_for(lambda: process_age(first.pid) > 0.03, message="a start time a newcomer can't share")
    # When it exits and a new process is born with the same PID
    # (the server is paused meanwhile, so its next look at the PID finds the newcomer: the
    # one order in which the reuse, not just the exit, must be reported)
    os.kill(server.pid, signal.SIGSTOP)
    try:
        first.kill()
        first.wait()
        second = spawn_with_pid(first.pid, ["sleep", "30"])
    finally:
        os.kill(server.pid, signal.SIGCONT)
    try:
        # Then the viewer is told the first one's PID went to another process
        gone = viewer.next("process_exit", where=lambda p: p["pid"] == first.pid)
        assert gone["reason"] == "pid reused"
        # And watching the PID again is a new series of a different process, not a revival
        again = viewer.call("watch", {"pid": first.pid})
        assert again["process"]["create_time"] != ack["process"]["create_time"]
        assert all(s["t"] > gone["t"] for s in again["samples"])
    finally:
        second.kill()
        second.wait()
