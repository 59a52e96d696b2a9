"""`memdash open FILE`: the page's server over a recording, read-only, with a time cursor.

Real everything: a real child recorded by `memdash record`, the real server started as a user
starts it (`python -m dashboard open FILE --no-browser --port 0`), real Socket.IO clients.
"""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from dashboard.recorded import Recording
from dashboard.recording import Recorder
from dashboard.testing import _SERVING
from tests.conftest import ROOT, MiB, Viewer, wait_for


class ReplayViewer(Viewer):
    EVENTS = Viewer.EVENTS + ("replay", "tool_result")


class Opened:
    """`memdash open FILE` on a free loopback port, as a user starts it."""

    def __init__(self, path: Path):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="memdash-open-", suffix=".txt")
        argv = [sys.executable, "-m", "dashboard", "open", str(path), "--no-browser", "--port", "0"]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = int(wait_for(self._announced, timeout=20, message="memdash open's URL"))
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: self.get("/api/system").ok, timeout=20, message="memdash to answer")

    def _announced(self) -> str | None:
        match = _SERVING.search(self.output())
        if match is None and self.proc.poll() is not None:
            raise AssertionError(f"memdash open exited: {self.output()}")
        return match and match.group(1)

    def output(self) -> str:
        with open(self.log.name) as f:
            return f.read()

    def get(self, path: str, **kw):
        return requests.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, json=None):
        return requests.post(self.url + path, json={} if json is None else json, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self.log.close()


@pytest.fixture(scope="module")
def opened(recorded):
    server = Opened(recorded[0])
    yield server
    server.stop()


@pytest.fixture
def viewer(opened):
    v = ReplayViewer(opened.url)
    yield v
    v.close()


def file_samples(path: Path, pid: int, since: float | None = None) -> list[dict]:
    with Recording(path) as rec:
        (row,) = [p for p in rec.processes() if p["pid"] == pid and not p["children"]]
        return rec.samples(row["id"], since)


def test_hello_says_replay_and_the_watch_ack_is_the_files_samples(opened, recorded, viewer):
    path, pid = recorded
    hello = viewer.next("hello")
    with Recording(path) as rec:
        start, end = rec.time_range()
    assert hello["replay"] == {"t": end, "start": start, "end": end, "speed": 1,
                               "playing": False, "seek": 0}  # fmt: skip
    ack = viewer.call("watch", {"pid": pid, "max_points": 2000})
    assert "error" not in ack, ack
    assert ack["bucket"] == 0.0
    expected = file_samples(path, pid)
    assert len(expected) >= 20  # 3 s at 10 Hz
    assert ack["samples"] == expected
    assert max(s["rss"] for s in expected) - min(s["rss"] for s in expected) >= 15 * MiB
    assert ack["process"]["pid"] == pid
    growth = viewer.next("growth", where=lambda g: g["pid"] == pid)
    assert growth["growth"]["verdict"] in ("warming_up", "stable", "growing", "shrinking")


def test_few_points_give_min_max_pairs(opened, recorded, viewer):
    path, pid = recorded
    ack = viewer.call("watch", {"pid": pid, "max_points": 6})
    expected = file_samples(path, pid)
    assert ack["bucket"] > 0 and 2 <= len(ack["samples"]) <= 6
    assert max(s["rss"] for s in ack["samples"]) == max(s["rss"] for s in expected)
    assert min(s["rss"] for s in ack["samples"]) == min(s["rss"] for s in expected)


def test_seek_then_play_at_10x_sends_the_files_samples(opened, recorded, viewer):
    path, pid = recorded
    viewer.next("hello")
    assert "error" not in viewer.call("watch", {"pid": pid})
    start = viewer.call("seek", {"t": 0})["start"]  # clamped to the first sample
    state = viewer.next("replay", where=lambda s: s["t"] == start and not s["playing"])
    assert state["seek"] >= 1
    ack = viewer.call("play", {"speed": 10})
    assert ack["playing"] and ack["speed"] == 10
    viewer.next("replay", where=lambda s: s["playing"])
    done = viewer.next("replay", timeout=20, where=lambda s: not s["playing"])
    assert done["t"] == done["end"]
    expected, got = file_samples(path, pid, since=start), []

    def all_arrived() -> bool:  # each message is handled on a thread of its own: poll
        while not viewer.events["samples"].empty():
            batch = viewer.events["samples"].get()
            assert batch["pid"] == pid and batch["children"] is False
            got.extend(batch["samples"])
        return len(got) >= len(expected)

    wait_for(all_arrived, message="every sample after the seek")
    assert got == expected
    viewer.next("growth", where=lambda g: g["pid"] == pid)


def test_seek_moves_the_cursor_and_the_backfill(opened, recorded, viewer):
    path, pid = recorded
    expected = file_samples(path, pid)
    middle = expected[len(expected) // 2]["t"]
    assert viewer.call("pause")["playing"] is False
    ack = viewer.call("seek", {"t": middle})
    assert ack["t"] == middle
    viewer.next("replay", where=lambda s: s["t"] == middle)
    watched = viewer.call("watch", {"pid": pid})
    assert watched["samples"] == [s for s in expected if s["t"] <= middle]
    samples = opened.get(f"/api/processes/{pid}/samples").json()["samples"]
    assert samples == watched["samples"]


def test_bad_cursor_requests_and_unknown_pids(opened, viewer):
    assert viewer.call("seek", {"t": "soon"})["error"]["code"] == "bad_request"
    assert viewer.call("play", {"speed": 3})["error"]["code"] == "bad_request"
    assert viewer.call("watch", {"pid": 1})["error"]["code"] == "no_such_process"


def test_read_only_and_rest_reads_come_from_the_file(opened, recorded):
    _path, pid = recorded
    for route in ("/api/runs/stop-all", "/api/scenarios/unbounded_cache/start",
                  f"/api/processes/{pid}/leak-report"):  # fmt: skip
        r = opened.post(route, {"variant": "leaky"})
        assert r.status_code == 409, (route, r.text)
        assert r.json()["error"]["code"] == "replaying"
    listed = opened.get("/api/processes").json()["processes"]
    assert [p["pid"] for p in listed] == [pid]
    assert opened.get(f"/api/processes/{pid}").json()["pid"] == pid
    assert opened.get("/api/runs").json() == {"runs": []}
    assert opened.get(f"/api/processes/{pid}/mappings").json()["error"]["code"] == "replaying"


def test_exports_are_the_files_whole(opened, recorded):
    # Given `memdash open` on a recording of one process
    path, pid = recorded
    # When the page asks for its exports (as on a live session)
    response = opened.get(f"/api/export?format=csv&pid={pid}")
    # Then the CSV is every sample of the file, named after it
    assert response.status_code == 200, response.text
    assert f'filename="{path.stem}.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(file_samples(path, pid)) > 0
    assert {row["pid"] for row in rows} == {str(pid)}
    # And JSON and the HTML report come from the file too; a bad format is the one error shape
    series = opened.get("/api/export?format=json").json()["series"]
    assert [s["pid"] for s in series] == [pid]
    assert "<html" in opened.get("/api/export?format=html").text
    bad = opened.get("/api/export?format=xlsx")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_request")


def write_lab_recording(path, t0: float, *, ended_at: float, result: dict, exit_at=None) -> None:
    """A recording of one leak-lab run (pid 4242, run r1) written by the real Recorder: 4 s
    of samples, the run crashing at ``ended_at``, a tool mark at t0+1 s and its ``result`` at
    t0+1.5 s, and the process's exit at ``exit_at`` when given."""
    run = {"run_id": "r1", "scenario": "unbounded_cache", "variant": "leaky", "runtime": "python",
           "pid": 4242, "started_at": t0 + 0.5, "params": {}, "processes": []}  # fmt: skip
    with Recorder(path, started_at=t0) as rec:
        rec.add_process(4242, 1.0, False, {"name": "worker", "cmdline": "worker"})
        samples = [{"t": t0 + i / 10, "rss": (50 + i) * MiB, "vms": 0, "shared": 0, "text": 0,
                    "data": 0} for i in range(40)]  # fmt: skip
        rec.add_batches([{"pid": 4242, "children": False, "samples": samples}])
        rec.add_run({**run, "state": "crashed", "reason": "MemoryError", "ended_at": ended_at})
        rec.add_mark(t0 + 1.0, "tool", "find the leak", 4242)
        rec.add_tool_result(t0 + 1.5, "r1", 4242, "leak_report", result)
        if exit_at is not None:
            rec.add_exit(4242, False, exit_at, "exited")
        assert rec.flush()


def test_runs_marks_and_tool_results_replay_in_time(tmp_path):
    t0 = time.time() - 100
    path = tmp_path / "lab.sqlite"
    write_lab_recording(path, t0, ended_at=t0 + 2.5, result={"top": []}, exit_at=t0 + 3.9)
    server = Opened(path)
    viewer = ReplayViewer(server.url)
    try:
        # Opened at the end: the past comes with the greeting, the run as it ended.
        assert viewer.next("run")["state"] == "crashed"
        assert viewer.next("mark")["label"] == "find the leak"
        assert viewer.next("tool_result")["kind"] == "leak_report"
        viewer.call("watch", {"pid": 4242})
        assert viewer.next("process_exit")["t"] == t0 + 3.9
        viewer.call("seek", {"t": t0})
        viewer.call("play", {"speed": 10})
        assert viewer.next("run", where=lambda r: r["state"] == "running")["run_id"] == "r1"
        assert viewer.next("mark", where=lambda m: m["t"] == t0 + 1.0)["pid"] == 4242
        assert viewer.next("tool_result")["result"] == {"top": []}
        ended = viewer.next("run", where=lambda r: r["state"] != "running")
        assert ended["reason"] == "MemoryError"
        assert viewer.next("process_exit", where=lambda e: e["t"] == t0 + 3.9)["reason"] == "exited"
    finally:
        viewer.close()
        server.stop()


def run_open(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dashboard", "open", *args, "--no-browser"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)  # fmt: skip


@pytest.mark.parametrize("kind", ["missing", "not_sqlite", "truncated", "newer"])
def test_bad_files_are_one_line_and_exit_2(recorded, tmp_path, kind):
    path = tmp_path / "bad.sqlite"
    if kind == "not_sqlite":
        path.write_text("time,rss\n1,2\n")
    elif kind == "truncated":
        data = recorded[0].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "newer":
        shutil.copy(recorded[0], path)
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA user_version = 99")
    out = run_open(str(path))
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memdash: error:"), out.stderr
    words = {"missing": "no recording", "not_sqlite": "not an SQLite", "truncated": "truncated",
             "newer": "newer memdash"}  # fmt: skip
    assert words[kind] in lines[0]
    assert out.stdout == ""
