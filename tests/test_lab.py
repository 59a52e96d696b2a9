"""The leak lab through the real server: runs, caps, crashes, Redis, and no orphans."""

from __future__ import annotations

import os
import re
import signal
import socket

import pytest

from dashboard.testing import Server, wait_for
from tests.conftest import MiB

FAST = {"duration": 30}


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (read from /proc, not through memdash)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def proc_rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_state(server: Server, run_id: str) -> dict:
    return next(r for r in server.get("/api/runs").json()["runs"] if r["run_id"] == run_id)


def wait_ended(server: Server, run_id: str, timeout: float = 30) -> dict:
    return wait_for(
        lambda: (r := run_state(server, run_id))["state"] not in ("starting", "running") and r,
        timeout=timeout,
        message=f"run {run_id} to end",
    )


def start(server: Server, scenario: str, variant: str, runtime: str = "python", **params):
    response = server.post(
        f"/api/scenarios/{scenario}/start",
        json={"variant": variant, "runtime": runtime, "params": {**FAST, **params}},
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(autouse=True)
def stop_everything(server):
    yield
    server.post("/api/runs/stop-all")


def test_catalogue_lists_seven_scenarios_with_code_and_both_runtimes(server):
    body = server.get("/api/scenarios").json()
    assert body["node"]["available"], body["node"]  # CI installs node: it must be there
    ids = [s["id"] for s in body["scenarios"]]
    assert len(ids) == 7 and "shared_cache" in ids and "heap_limit" in ids
    for scenario in body["scenarios"]:
        assert {"leaky", "fixed"} == set(scenario["variants"])
        for runtime in scenario["runtimes"]:
            code = scenario["code"][runtime["id"]]
            assert code["leaky"].strip() and code["fixed"].strip()


def test_compare_starts_both_from_one_t0_and_the_leaky_one_grows(server, viewer):
    # Given a compare of the unbounded cache
    response = server.post(
        "/api/scenarios/unbounded_cache/compare",
        json={"runtime": "python", "params": {**FAST, "rate": 1000}},
    )
    assert response.status_code == 201
    leaky, fixed = response.json()["runs"]
    assert (leaky["variant"], fixed["variant"]) == ("leaky", "fixed")
    assert leaky["started_at"] == fixed["started_at"]
    # When both have run a few seconds
    wait_for(lambda: run_state(server, leaky["run_id"])["state"] == "running", message="running")
    base = {r["pid"]: proc_rss(r["pid"]) for r in (leaky, fixed)}
    wait_for(
        lambda: proc_rss(leaky["pid"]) - base[leaky["pid"]] > 20 * MiB,
        timeout=20,
        message="the leaky run's RSS (from /proc) to grow by 20 MiB",
    )
    # Then the fixed one, doing the same work, grew much less
    assert proc_rss(fixed["pid"]) - base[fixed["pid"]] < 10 * MiB
    # And a viewer watching the run gets its language heap in the samples too
    viewer.call("watch", {"pid": leaky["pid"], "children": True})
    viewer.next(
        "samples",
        timeout=5,
        where=lambda p: p["pid"] == leaky["pid"] and any("heap_used" in s for s in p["samples"]),
    )


def test_run_events_reach_every_viewer(server, viewer_factory):
    watcher = viewer_factory()
    run = start(server, "module_accumulator", "fixed")
    started = watcher.next("run", where=lambda p: p["run_id"] == run["run_id"])
    assert started["state"] in ("starting", "running") and started["pid"] == run["pid"]
    server.post(f"/api/runs/{run['run_id']}/stop")
    ended = watcher.next(
        "run", where=lambda p: p["run_id"] == run["run_id"] and p["state"] == "stopped"
    )
    assert ended["reason"] == "stopped by a viewer"
    assert not alive(run["pid"])


def test_memory_cap_stops_a_runaway_run(server):
    # Given a leaky run with a 96 MiB cap
    run = start(server, "unbounded_cache", "leaky", max_rss_mb=96, rate=2000)
    # Then it is stopped at the cap and reported as capped
    ended = wait_ended(server, run["run_id"])
    assert ended["state"] == "capped", ended
    assert "cap" in ended["reason"]
    assert not alive(run["pid"])


def test_time_cap_ends_a_run_as_capped(server):
    run = start(server, "slow_consumer", "fixed", duration=2)
    ended = wait_ended(server, run["run_id"], timeout=20)
    assert ended["state"] == "capped", ended
    # "duration reached" from the worker itself, or the server's "time cap of 2 s reached"
    # when it sees the exit before reading the worker's last line
    assert "duration" in ended["reason"] or "time cap" in ended["reason"], ended


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_hitting_the_heap_limit_is_reported_as_a_crash_with_its_reason(server, runtime):
    run = start(server, "heap_limit", "leaky", runtime, limit_mb=64, rate=2000)
    ended = wait_ended(server, run["run_id"], timeout=60)
    assert ended["state"] == "crashed", ended
    assert "out of memory" in ended["reason"].lower()
    assert ended["exit_code"] != 0


def test_shared_cache_fixed_uses_a_private_redis_that_goes_away_with_the_run(server):
    # Given the fixed shared-cache run
    run = start(server, "shared_cache", "fixed", workers=2)
    [redis_pid] = run["extra_pids"]
    with open(f"/proc/{redis_pid}/cmdline") as f:
        title = f.read()  # redis-server rewrites it to "redis-server 127.0.0.1:PORT"
    match = re.search(r"redis-server 127\.0\.0\.1:(\d+)", title)
    assert match, title
    port = int(match.group(1))

    # Then the workers really store their cache in that redis-server
    def dbsize() -> int:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"DBSIZE\r\n")
            return int(s.recv(64).strip().lstrip(b":"))

    wait_for(lambda: dbsize() > 10, timeout=15, message="keys in the private redis")
    # And stopping the run stops its redis-server too
    server.post(f"/api/runs/{run['run_id']}/stop")
    wait_for(lambda: not alive(redis_pid), message="redis-server to stop")


def test_python_leak_report_points_at_the_leaking_line(server):
    run = start(server, "unbounded_cache", "leaky")
    wait_for(lambda: run_state(server, run["run_id"])["state"] == "running", message="running")
    report = server.post(f"/api/runs/{run['run_id']}/leak-report", json={"seconds": 2}).json()
    top = report["top"][0]
    assert top["file"].endswith("unbounded_cache.py") and top["size_diff"] > 0, report


def test_node_heap_snapshot_downloads(server):
    run = start(server, "closure_retention", "leaky", "node")
    wait_for(lambda: run_state(server, run["run_id"])["state"] == "running", message="running")
    body = server.post(f"/api/runs/{run['run_id']}/heap-snapshot").json()
    download = server.get(body["url"])
    assert download.status_code == 200
    assert download.content.startswith(b'{"snapshot"')


def test_mapping_diff_shows_where_a_run_grew(server):
    run = start(server, "offheap", "leaky")
    wait_for(lambda: run_state(server, run["run_id"])["state"] == "running", message="running")
    body = server.get(f"/api/processes/{run['pid']}/mappings", params={"seconds": 2}).json()
    grown = {g["kind"]: g["diff"] for g in body["groups"]}
    assert grown["anonymous"] + grown["heap"] > 2 * MiB, body["groups"]


@pytest.mark.parametrize(
    "path, body, status, code",
    [
        ("/api/scenarios/nope/start", {"variant": "leaky"}, 404, "unknown_scenario"),
        ("/api/scenarios/unbounded_cache/start", {"variant": "sneaky"}, 400, "bad_request"),
        (
            "/api/scenarios/unbounded_cache/start",
            {"variant": "leaky", "runtime": "ruby"},
            400,
            "bad_request",
        ),
        (
            "/api/scenarios/unbounded_cache/start",
            {"variant": "leaky", "params": {"rate": 10**9}},
            400,
            "bad_params",
        ),
        (
            "/api/scenarios/unbounded_cache/start",
            {"variant": "leaky", "params": {"rate": "fast"}},
            400,
            "bad_params",
        ),
        (
            "/api/scenarios/unbounded_cache/start",
            {"variant": "leaky", "params": {"colour": 1}},
            400,
            "bad_params",
        ),
        (
            "/api/scenarios/shared_cache/start",
            {"variant": "fixed", "params": {"redis_port": 6379}},
            400,
            "bad_request",
        ),
        (
            "/api/scenarios/unbounded_cache/start",
            {"variant": "leaky", "params": [1]},
            400,
            "bad_request",
        ),
        ("/api/runs/r999/stop", None, 404, "unknown_run"),
    ],
)
def test_bad_lab_requests_get_clear_errors_and_start_nothing(server, path, body, status, code):
    before = len(server.get("/api/runs").json()["runs"])
    response = server.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert len(server.get("/api/runs").json()["runs"]) == before


def test_stopping_a_finished_run_is_a_conflict(server):
    run = start(server, "module_accumulator", "fixed")
    assert server.post(f"/api/runs/{run['run_id']}/stop").status_code == 200
    again = server.post(f"/api/runs/{run['run_id']}/stop")
    assert again.status_code == 409 and again.json()["error"]["code"] == "run_ended"


def test_too_many_runs_is_429_and_starts_nothing(server):
    runs = [start(server, "module_accumulator", "fixed", max_rss_mb=64) for _ in range(8)]
    response = server.post(
        "/api/scenarios/module_accumulator/start",
        json={"variant": "fixed", "params": {**FAST, "max_rss_mb": 64}},
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_runs"
    assert (
        sum(r["state"] in ("starting", "running") for r in server.get("/api/runs").json()["runs"])
        == 8
    )
    stopped = server.post("/api/runs/stop-all").json()["stopped"]
    assert {r["run_id"] for r in runs} <= {r["run_id"] for r in stopped}
    assert not any(alive(r["pid"]) for r in runs)


def test_kill_9_of_the_server_leaves_no_worker_alive():
    # Given a server of our own with runs in both runtimes, one with children and a redis
    own = Server()
    try:
        started = [
            start(own, "unbounded_cache", "leaky"),
            start(own, "offheap", "leaky", "node"),
            start(own, "shared_cache", "fixed", workers=2),
            start(own, "shared_cache", "leaky", "node", workers=2),
        ]
        wait_for(
            lambda: all(run_state(own, r["run_id"])["state"] == "running" for r in started),
            timeout=20,
            message="all runs running",
        )
        pids = [r["pid"] for r in started] + started[2]["extra_pids"]
        children = wait_for(
            lambda: len(c := [c for r in started for c in _descendants(r["pid"])]) >= 4 and c,
            message="the shared-cache workers to start",
        )
        # When the server is killed with SIGKILL (no clean-up code runs)
        os.kill(own.proc.pid, signal.SIGKILL)
        own.proc.wait()
        # Then every worker, worker child and redis-server dies with it
        everyone = pids + children
        wait_for(
            lambda: not any(alive(p) for p in everyone),
            timeout=15,
            message=f"no orphans among {everyone}",
        )
    finally:
        own.stop()


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []
