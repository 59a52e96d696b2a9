"""The leak lab's tools act on what leaks: a run's processes and roles, tools aimed at (or
picking) the worker process that grows, marks on the chart, reasons in words, clearing
finished runs, speaker notes. Real workers, the real server, real Socket.IO viewers."""

from __future__ import annotations

import json

import psutil
import pytest

from dashboard.testing import Server, wait_for
from tests.conftest import ROOT, MiB, process_age

FAST = {"duration": 40}
SHARED_CACHE = ROOT / "dashboard" / "scenarios" / "shared_cache.py"


def run_state(server: Server, run_id: str) -> dict:
    return next(r for r in server.get("/api/runs").json()["runs"] if r["run_id"] == run_id)


def start(server: Server, scenario: str, variant: str, runtime: str = "python", **params) -> dict:
    response = server.post(
        f"/api/scenarios/{scenario}/start",
        json={"variant": variant, "runtime": runtime, "params": {**FAST, **params}},
    )
    assert response.status_code == 201, response.text
    return response.json()


def with_workers(server: Server, run: dict, count: int) -> dict:
    """The run once it is running and lists ``count`` worker processes."""

    def ready():
        state = run_state(server, run["run_id"])
        workers = [p for p in state["processes"] if p["role"] == "worker"]
        return state["state"] == "running" and len(workers) == count and state

    return wait_for(ready, timeout=20, message=f"run {run['run_id']} to list {count} workers")


def pids(run: dict, role: str) -> list[int]:
    return [p["pid"] for p in run["processes"] if p["role"] == role]


def line_of(path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.fixture(autouse=True)
def stop_everything(server):
    yield
    server.post("/api/runs/stop-all")


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_a_shared_cache_run_lists_its_processes_with_their_roles(server, viewer, runtime):
    # Given a compare of shared_cache with 2 workers
    response = server.post(
        "/api/scenarios/shared_cache/compare",
        json={"runtime": runtime, "params": {**FAST, "workers": 2}},
    )
    assert response.status_code == 201, response.text
    leaky, fixed = response.json()["runs"]
    # Then each run lists its worker as main, the worker's children as workers ...
    for run in (leaky, fixed):
        state = with_workers(server, run, 2)
        assert pids(state, "main") == [run["pid"]]
        children = {c.pid for c in psutil.Process(run["pid"]).children()}
        assert set(pids(state, "worker")) == children and len(children) == 2
        assert "growth" in state and all("growth" in p for p in state["processes"])
    # ... and the fixed one its redis-server
    assert pids(run_state(server, fixed["run_id"]), "redis") == fixed["extra_pids"]
    assert pids(run_state(server, leaky["run_id"]), "redis") == []
    # And viewers were told when the workers appeared
    viewer.next(
        "run",
        timeout=20,
        where=lambda r: r["run_id"] == leaky["run_id"] and len(pids(r, "worker")) == 2,
    )


def test_find_the_leak_aimed_at_a_python_worker_examines_that_worker(server, viewer):
    # Given a leaky shared_cache run and its workers
    run = with_workers(server, start(server, "shared_cache", "leaky", workers=2), 2)
    worker = pids(run, "worker")[1]
    url = f"/api/runs/{run['run_id']}/leak-report"
    # When Find the leak is aimed at one worker
    response = server.post(url, json={"seconds": 2, "pid": worker})
    assert response.status_code == 200, response.text
    report = response.json()
    # Then it examined that worker and found the cache line of the scenario first
    assert report["pid"] == worker and report["run_id"] == run["run_id"], report
    top = report["top"][0]
    assert (top["file"], top["own"]) == ("dashboard/scenarios/shared_cache.py", True), top
    assert top["line"] == line_of(SHARED_CACHE, "local_cache[key] = os.urandom")
    assert top["size_diff"] > 256 * 1024, top
    # And the chart got a mark for it, naming the worker
    mark = viewer.next("mark", where=lambda m: m.get("run_id") == run["run_id"])
    assert (mark["kind"], mark["label"], mark["pid"]) == ("tool", "find the leak", worker)
    # And the coordinator, asked by pid, grows no cache of its own: the worker really answered
    main = server.post(url, json={"seconds": 1, "pid": run["pid"]}).json()
    assert main["pid"] == run["pid"]
    assert not [s for s in main["top"] if s["own"] and s["size_diff"] > 256 * 1024], main
    # And by default the tool picks a worker (they grow; the coordinator does not)
    picked = server.post(url, json={"seconds": 1}).json()
    assert picked["pid"] in pids(run, "worker"), picked


def test_find_the_leak_says_when_the_growth_is_outside_the_python_heap(server):
    # Given the Python offheap leak (mmap: outside the Python heap)
    run = start(server, "offheap", "leaky", rate=20)
    wait_for(lambda: run_state(server, run["run_id"])["state"] == "running", message="running")
    # When Find the leak runs on it
    report = server.post(f"/api/runs/{run['run_id']}/leak-report", json={"seconds": 2}).json()
    # Then it says the growth is outside the heap and points to Mappings diff
    assert report["rss_diff"] > 4 * MiB and report["heap_diff"] < MiB, report
    assert "outside the language heap" in report["hint"] and "Mappings diff" in report["hint"]
    # And the scenario's own lines that grew come first (the chunk allocation on top)
    assert report["top"][0]["file"] == "dashboard/scenarios/offheap.py", report["top"]
    first = [s["own"] and s["size_diff"] > 0 for s in report["top"]]
    assert first == sorted(first, reverse=True), report["top"]


def test_heap_snapshot_aimed_at_a_node_worker_is_that_workers_heap(server, viewer):
    # Given a leaky Node shared_cache run and its workers
    run = with_workers(server, start(server, "shared_cache", "leaky", "node", workers=2), 2)
    worker = pids(run, "worker")[0]
    # (that has cached a few hundred keys: 150 a second)
    wait_for(lambda: process_age(worker) > 2, message="the worker to have worked 2 s")
    # When a heap snapshot is taken of one worker
    body = server.post(f"/api/runs/{run['run_id']}/heap-snapshot", json={"pid": worker}).json()
    # Then it names that worker, and holds the cache keys only workers have
    assert body["pid"] == worker and body["name"].endswith(".heapsnapshot"), body
    snapshot = server.get(body["url"]).content
    assert snapshot.startswith(b'{"snapshot"') and b'"page:12"' in snapshot
    assert {"rss_diff", "heap_diff", "external_diff"} <= set(body)
    mark = viewer.next("mark", where=lambda m: m.get("run_id") == run["run_id"])
    assert (mark["kind"], mark["label"], mark["pid"]) == ("tool", "heap snapshot", worker)
    # And the coordinator's own heap has no cache in it
    main = server.post(f"/api/runs/{run['run_id']}/heap-snapshot", json={"pid": run["pid"]})
    assert main.json()["pid"] == run["pid"]
    assert b'"page:12"' not in server.get(main.json()["url"]).content


@pytest.mark.parametrize("pid", [1, "12", True, 2**40, "redis"])
def test_a_tool_aimed_at_a_process_outside_the_run_is_bad_pid(server, pid):
    # Given a running fixed shared_cache (a main, workers and a redis-server)
    run = with_workers(server, start(server, "shared_cache", "fixed", workers=1), 1)
    if pid == "redis":
        pid = run["extra_pids"][0]  # a process of the run, but a helper: no tool for it
    # When a tool is aimed at it
    response = server.post(f"/api/runs/{run['run_id']}/leak-report", json={"pid": pid})
    # Then a 400 bad_pid in the one error shape, and the run goes on
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_pid"
    assert response.json()["error"]["message"]
    assert run_state(server, run["run_id"])["state"] == "running"


def test_a_tool_on_a_run_that_has_ended_is_a_conflict(server):
    python = start(server, "unbounded_cache", "leaky")
    node = start(server, "closure_retention", "leaky", "node")
    for run in (python, node):
        assert server.post(f"/api/runs/{run['run_id']}/stop").status_code == 200
    for path in (
        f"/api/runs/{python['run_id']}/leak-report",
        f"/api/runs/{node['run_id']}/heap-snapshot",
    ):
        response = server.post(path, json={"seconds": 1})
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "run_ended"


def test_clear_finished_forgets_ended_runs_only(server, viewer):
    # Given one stopped run and one running
    ended = start(server, "module_accumulator", "fixed")
    running = start(server, "module_accumulator", "fixed")
    server.post(f"/api/runs/{ended['run_id']}/stop")
    # When the finished runs are cleared
    response = server.post("/api/runs/clear-finished")
    # Then the stopped one is gone from the runs, the running one stays
    assert response.status_code == 200
    cleared = response.json()["cleared"]
    assert ended["run_id"] in cleared and running["run_id"] not in cleared
    listed = {r["run_id"] for r in server.get("/api/runs").json()["runs"]}
    assert ended["run_id"] not in listed and running["run_id"] in listed
    # And every viewer was told
    event = viewer.next("runs_cleared", where=lambda e: ended["run_id"] in e["run_ids"])
    assert event["run_ids"] == cleared
    # And a cleared run is unknown from now on
    assert server.post(f"/api/runs/{ended['run_id']}/stop").status_code == 404


@pytest.mark.parametrize(
    "runtime, reason",
    [("node", "JavaScript heap out of memory"), ("python", "MemoryError: out of memory")],
)
def test_a_crash_reads_its_reason_in_words_and_marks_the_chart(server, viewer, runtime, reason):
    run = start(server, "heap_limit", "leaky", runtime, limit_mb=48, rate=2000)
    ended = wait_for(
        lambda: (
            (r := run_state(server, run["run_id"]))["state"] not in ("starting", "running") and r
        ),
        timeout=60,
        message="the heap_limit run to die",
    )
    assert ended["state"] == "crashed", ended
    assert ended["reason"].startswith(reason), ended["reason"]
    mark = viewer.next("mark", timeout=5, where=lambda m: m.get("run_id") == run["run_id"])
    assert (mark["kind"], mark["label"], mark["pid"]) == ("crash", ended["reason"], run["pid"])


def test_a_cap_and_a_stop_read_in_words_and_mark_the_chart(server, viewer):
    capped = start(server, "unbounded_cache", "leaky", max_rss_mb=64, rate=3000)
    stopped = start(server, "module_accumulator", "fixed")
    wait_for(lambda: run_state(server, stopped["run_id"])["state"] == "running", message="running")
    server.post(f"/api/runs/{stopped['run_id']}/stop")
    expected = {
        capped["run_id"]: ("cap", "memory cap 64 MiB"),
        stopped["run_id"]: ("stop", "stopped by a viewer"),
    }
    marks = {}
    while set(marks) != set(expected):  # in whichever order they come
        mark = viewer.next("mark", timeout=30, where=lambda m: m.get("run_id") in expected)
        marks[mark["run_id"]] = mark
    for run_id, (kind, words) in expected.items():
        assert marks[run_id]["kind"] == kind and marks[run_id]["label"].startswith(words), marks
        assert run_state(server, run_id)["reason"] == marks[run_id]["label"]


def test_the_catalogue_carries_speaker_notes(server):
    for scenario in server.get("/api/scenarios").json()["scenarios"]:
        notes = scenario["notes"]
        assert set(notes) == {"what", "why", "fix", "look"}, scenario["id"]
        assert all(isinstance(text, str) and len(text) > 40 for text in notes.values())
        json.dumps(notes)


def test_the_growth_hook_picks_the_tool_target_and_quiet_spans_the_action(app):
    # Given the pool of an app with hooks that say which worker grows, and record quiet spans
    pool = app.extensions["memdash"].workers
    spans = []
    run = pool.start_run("shared_cache", "leaky", "python", {**FAST, "workers": 2})
    wait_for(
        lambda: run.state == "running" and len(run.workers) == 2, timeout=20, message="workers"
    )
    favourite = run.workers[0]
    pool.growth_of = lambda pid, children: {
        "bytes_per_min": 10 * MiB if pid == favourite else 0,
        "verdict": "growing" if pid == favourite else "stable",
        "window_s": 10.0,
    }
    pool.quiet = lambda pids, start, end: spans.append((sorted(pids), start, end))
    # When Find the leak runs without a pid
    report = pool.leak_report(run.run_id, 1.0)
    # Then it examined the process the estimator says grows most
    assert report["pid"] == favourite
    # And the estimator was told to ignore the action, first as expected, then as it was
    assert [s[0] for s in spans] == [sorted({favourite, run.pid})] * 2
    (_, start, expected), (_, start_again, actual) = spans
    assert start == start_again and actual - start >= 1.0 and expected - start >= 1.0
    # And the run shows that growth, per process too
    wait_for(lambda: run.to_dict()["growth"] is not None, message="the run's growth")
    by_pid = {p["pid"]: p for p in run.to_dict()["processes"]}
    assert by_pid[favourite]["growth"]["verdict"] == "growing"
    pool.stop(run.run_id)
