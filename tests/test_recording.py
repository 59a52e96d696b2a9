"""Recording to SQLite and reading it back: real files, real subprocesses, a real small disk."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from dashboard import errors, recrows
from dashboard.recording import (
    FIELDS,
    SCHEMA,
    SCHEMA_VERSION,
    BadRecording,
    NewerRecording,
    Recorder,
    Recording,
    RecordingLocked,
    default_session_path,
    list_sessions,
    prune,
    sessions_dir,
)
from tests.conftest import ROOT

KiB, MiB = 1024, 2**20


def sample(t: float, i: int = 0, detail: bool = False, heap: bool = False) -> dict:
    s = {"t": t, "rss": (100 + i) * 4096, "vms": 3 * 2**30 + i * 4096, "shared": 2 * MiB,
         "text": 64 * KiB, "data": 50 * MiB}  # fmt: skip
    if detail:
        s.update(uss=90 * MiB + i * KiB, pss=95 * MiB, swap=0, anon=40 * MiB)
    if heap:
        s.update(heap_used=12_345_677 + i, heap_total=20_000_001, external=999)
    return s


def record(path, batches_of_samples, pid=4242, children=False, **info) -> Recorder:
    rec = Recorder(path)
    rec.add_process(pid, 1700.25, children, {"name": "leaky", "cmdline": "leaky --x", **info})
    for samples in batches_of_samples:
        rec.add_batches([{"pid": pid, "children": children, "samples": samples}])
    assert rec.flush()
    return rec


def test_round_trip_keeps_every_field_and_leaves_unmeasured_keys_out(tmp_path):
    # Given a session with fast samples, detail samples, heap figures and a tree series
    t0 = time.time()
    written = [sample(t0 + i / 10, i, detail=i % 10 == 0, heap=i % 10 == 5) for i in range(50)]
    rec = record(tmp_path / "s.sqlite", [written[:20], written[20:]], user="me")
    rec.add_process(4242, 1700.25, True, {"name": "leaky"})
    tree = [{**sample(t0, 1), "children": 3}, {**sample(t0 + 0.1, 2), "children": 0}]
    rec.add_batches([{"pid": 4242, "children": True, "samples": tree}])
    rec.close()
    # When it is opened again
    with Recording(tmp_path / "s.sqlite") as rd:
        processes = rd.processes()
        # Then both series are there, with their description and sample counts
        assert [(p["pid"], p["children"], p["samples"]) for p in processes] == [
            (4242, False, 50),
            (4242, True, 2),
        ]
        assert processes[0]["name"] == "leaky" and processes[0]["user"] == "me"
        assert processes[0]["create_time"] == 1700.25
        assert processes[0]["first_t"] == pytest.approx(t0, abs=1e-3)
        assert processes[0]["last_t"] == pytest.approx(t0 + 4.9, abs=1e-3)
        # and every sample reads back exactly, keys absent where not measured (never None)
        back = rd.samples(processes[0]["id"])
        assert len(back) == 50
        for want, got in zip(written, back, strict=True):
            assert got.pop("t") == pytest.approx(want.pop("t"), abs=1e-3)
            assert got == want
        assert rd.samples(processes[1]["id"]) == [
            {**s, "t": pytest.approx(s["t"], abs=1e-3)} for s in tree
        ]
        assert rd.time_range() == pytest.approx((t0, t0 + 4.9), abs=1e-3)
        assert rd.schema_version == SCHEMA_VERSION
        assert rd.meta["interval"] == 0.1 and rd.meta["memdash_version"]


def test_since_is_exclusive_and_until_inclusive(tmp_path):
    # Given 10 samples 0.1 s apart
    t0 = 1_800_000_000.0
    record(tmp_path / "s.sqlite", [[sample(t0 + i / 10, i) for i in range(10)]]).close()
    with Recording(tmp_path / "s.sqlite") as rd:
        # When asking for (t0 + 0.2, t0 + 0.5]
        got = [s["t"] for s in rd.samples(1, since=t0 + 0.2, until=t0 + 0.5)]
        # Then the samples at 0.3, 0.4, 0.5 come back
        assert got == pytest.approx([t0 + 0.3, t0 + 0.4, t0 + 0.5])


def test_pid_reuse_makes_a_new_process_and_exits_runs_marks_tools_are_kept(tmp_path):
    # Given a process that exits, and a new one with the same PID
    t = time.time()
    rec = record(tmp_path / "s.sqlite", [[sample(t)]])
    rec.add_exit(4242, False, t + 1, "pid reused")
    rec.add_process(4242, 1800.5, False, {"name": "other"})
    rec.add_batches([{"pid": 4242, "children": False, "samples": [sample(t + 2)]}])
    # and a run updated twice (the verdict arrives first, the final state later)
    run = {"run_id": "r1", "scenario": "cache", "variant": "leaky", "runtime": "python",
           "pid": 4242, "state": "running", "started_at": t, "params": {"mib": 1}}  # fmt: skip
    rec.add_run({**run, "verdict": {"growing": True, "bytes_per_minute": 1e6}})
    rec.add_run({**run, "state": "stopped", "ended_at": t + 3, "reason": "stopped"})
    rec.add_mark(t + 0.5, "note", "before the spike", pid=4242)
    rec.add_mark(t + 0.6, "session", "no process")
    rec.add_tool_result(t + 2.5, "r1", 4242, "leak_report", {"top": [["x.py:1", 1024]]}, "/a/b")
    rec.close()
    with Recording(tmp_path / "s.sqlite") as rd:
        first, second = rd.processes()
        # Then the two processes are apart, each with its own samples
        assert (first["name"], second["name"]) == ("leaky", "other")
        assert (first["samples"], second["samples"]) == (1, 1)
        assert rd.exits() == [{"process_id": first["id"], "pid": 4242, "children": False,
                               "t": t + 1, "reason": "pid reused"}]  # fmt: skip
        # and the run is one row: the last state, the verdict kept
        (got,) = rd.runs()
        assert got["state"] == "stopped" and got["ended_at"] == t + 3
        assert got["verdict"] == {"growing": True, "bytes_per_minute": 1e6}
        assert got["params"] == {"mib": 1}
        marks = rd.marks()
        assert [(m["label"], m["process_id"]) for m in marks] == [
            ("before the spike", second["id"]),
            ("no process", None),
        ]
        assert rd.tool_results() == [{"t": t + 2.5, "run_id": "r1", "pid": 4242,
                                      "kind": "leak_report", "result": {"top": [["x.py:1", 1024]]},
                                      "artefact": "/a/b"}]  # fmt: skip


def test_a_repeated_sample_is_stored_once(tmp_path):
    # Given a backfill that repeats samples already recorded
    t = time.time()
    batch = [sample(t + i / 10, i) for i in range(5)]
    rec = record(tmp_path / "s.sqlite", [batch, batch[2:]])
    # Then each is stored once and counted once
    assert rec.written == 5
    rec.close()
    with Recording(tmp_path / "s.sqlite") as rd:
        assert rd.processes()[0]["samples"] == 5 == len(rd.samples(1))


# -- files that must be refused --------------------------------------------------------------


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(errors.NotFound, match="no recording"):
        Recording(tmp_path / "nope.sqlite")


def test_a_file_that_is_not_sqlite_is_refused_by_both_and_left_alone(tmp_path):
    # Given a text file
    path = tmp_path / "notes.sqlite"
    path.write_text("not a database at all, but precious\n" * 10)
    # Then reading and recording both refuse it clearly, and it is unchanged
    with pytest.raises(BadRecording, match="not an SQLite file") as caught:
        Recording(path)
    assert caught.value.body()["error"]["message"].endswith("(not an SQLite file)")
    with pytest.raises(BadRecording, match="not an SQLite file"):
        Recorder(path)
    assert path.read_text().startswith("not a database at all")
    with pytest.raises(BadRecording, match="empty"):
        (tmp_path / "empty.sqlite").touch()
        Recording(tmp_path / "empty.sqlite")


def test_an_sqlite_file_of_another_program_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE t (x)")
        db.commit()
    with pytest.raises(BadRecording, match="not a memdash recording"):
        Recording(path)
    with pytest.raises(BadRecording, match="not a memdash recording"):
        Recorder(path)


def test_a_truncated_file_is_refused(tmp_path):
    # Given a recording of a few hundred KiB, cut in half (a copy interrupted half-way)
    path = tmp_path / "s.sqlite"
    t = time.time()
    record(path, [[sample(t + i / 10, i, detail=True) for i in range(5000)]]).close()
    size = path.stat().st_size
    assert size > 100 * KiB
    os.truncate(path, size // 2)
    # Then it is refused, saying so
    with pytest.raises(BadRecording, match="truncated"):
        Recording(path)
    with pytest.raises(BadRecording, match="truncated"):
        Recorder(path)


def test_a_newer_schema_is_refused_clearly(tmp_path):
    # Given a recording a future memdash wrote
    path = tmp_path / "s.sqlite"
    record(path, [[sample(time.time())]]).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    # Then neither reading nor appending touches it
    with pytest.raises(NewerRecording, match="newer memdash") as caught:
        Recording(path)
    assert f"schema {SCHEMA_VERSION + 1}" in caught.value.message
    with pytest.raises(NewerRecording):
        Recorder(path)


# -- one writer per file -----------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from dashboard.recording import Recorder
    rec = Recorder(sys.argv[1])
    rec.add_process(7, 1.0, False, {"name": "held"})
    rec.add_batches([{"pid": 7, "children": False, "samples": [{"t": time.time(), "rss": 4096}]}])
    rec.flush()
    print("ready", flush=True)
    sys.stdin.read()
    rec.close()
    """
)


def test_a_second_recorder_of_the_same_file_is_refused(tmp_path):
    # Given another process recording to the file
    path = tmp_path / "s.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        # Then a second recorder refuses, in another process and in this one
        with pytest.raises(RecordingLocked, match="another memdash") as caught:
            Recorder(path)
        assert str(path) in caught.value.message
        # but reading it while it is written works
        with Recording(path) as rd:
            assert rd.processes()[0]["name"] == "held"
    finally:
        holder.communicate("", timeout=20)
    assert holder.returncode == 0
    # When the first has finished, recording again appends to the same file
    with Recorder(path) as rec:
        with pytest.raises(RecordingLocked, match="already being recorded"):
            Recorder(path)
        rec.add_process(8, 2.0, False, {"name": "second"})
        rec.add_batches([{"pid": 8, "children": False, "samples": [sample(time.time())]}])
    with Recording(path) as rd:
        assert [p["name"] for p in rd.processes()] == ["held", "second"]


# -- crash safety, a full disk, a slow disk ----------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from dashboard.recording import Recorder
    rec = Recorder(sys.argv[1])
    rec.add_process(99, 1.0, False, {"name": "synthetic"})
    i = 0
    while True:
        t = time.time()
        rec.add_batches([{"pid": 99, "children": False, "samples": [{"t": t, "rss": i * 4096}]}])
        print(repr(t), flush=True)
        i += 1
        time.sleep(0.1)
    """
)


def test_kill_9_keeps_every_sample_older_than_two_seconds(tmp_path):
    # Given a process recording a sample every 0.1 s
    path = tmp_path / "crash.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        sent = [float(writer.stdout.readline()) for _ in range(40)]
        # When it is killed with SIGKILL
        killed_at = time.time()
        writer.send_signal(signal.SIGKILL)
        sent += [float(line) for line in writer.stdout.read().split()]
    finally:
        writer.kill()
        writer.wait()
    # Then the file opens and holds every sample sent more than 2 s before the kill
    old = [round(t, 3) for t in sent if t < killed_at - 2]
    assert len(old) >= 15
    with Recording(path) as rd:
        (process,) = rd.processes()
        kept = {round(s["t"], 3) for s in rd.samples(process["id"])}
    assert not set(old) - kept


def _mount_tmpfs(where, size: str) -> None:
    # Mounting needs root: CI runs as root and must run this; elsewhere it fails with a
    # clear message rather than pretending to pass.
    assert os.geteuid() == 0, "this test mounts a small tmpfs: run it as root (CI does)"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)


def _unmount(where) -> None:
    if subprocess.run(["umount", str(where)]).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_full_disk_stops_recording_visibly_and_keeps_what_was_written(tmp_path):
    small = tmp_path / "small"
    _mount_tmpfs(small, "256k")
    try:
        # Given a recorder on a 256 KiB disk, with a callback for the server
        told = []
        rec = Recorder(small / "s.sqlite", on_error=told.append)
        rec.add_process(5, 1.0, False, {"name": "big"})
        t = time.time()
        # When samples keep coming until the disk is full
        for i in range(2000):
            batch = [sample(t + i + k / 100, k, detail=True, heap=True) for k in range(100)]
            rec.add_batches([{"pid": 5, "children": False, "samples": batch}])  # never raises
            if not rec.flush():
                break
        # Then recording stops with an error the server can show, once
        assert rec.error is not None and "full" in rec.error, rec.error
        assert told == [rec.error]
        assert rec.status()["error"] == rec.error
        rec.add_batches([{"pid": 5, "children": False, "samples": [sample(t)]}])  # ignored
        rec.close()
        # and everything committed before is there
        assert rec.written > 0
        with Recording(small / "s.sqlite") as rd:
            assert rd.processes()[0]["samples"] == rec.written == len(rd.samples(1))
    finally:
        _unmount(small)


def test_a_full_queue_drops_batches_and_says_so(tmp_path):
    # Given a recorder whose disk is busy (another connection holds the write lock)
    path = tmp_path / "s.sqlite"
    rec = Recorder(path, max_queue=5)
    rec.add_process(6, 1.0, False, {"name": "x"})
    assert rec.flush()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        # When more batches arrive than the queue holds
        t = time.time()
        for i in range(50):
            rec.add_batches([{"pid": 6, "children": False, "samples": [sample(t + i / 10, i)]}])
        # Then the extra ones are counted as dropped, and the caller was never blocked
        assert rec.dropped >= 40
        assert rec.status()["dropped"] == rec.dropped
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # and the rest is written once the disk is free again
    assert rec.flush()
    rec.close()
    assert rec.error is None
    assert rec.written == 50 - rec.dropped
    with Recording(path) as rd:
        assert len(rd.samples(1)) == rec.written


# -- where sessions live -----------------------------------------------------------------------


def test_default_path_is_under_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    now = time.mktime((2025, 11, 28, 15, 4, 5, 0, 0, -1))
    path = default_session_path(now)
    assert path == tmp_path / "data" / "memdash" / "sessions" / "2025-11-28T15-04-05.sqlite"
    Recorder(path).close()  # creates the directories
    assert default_session_path(now).name == "2025-11-28T15-04-05-2.sqlite"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert str(sessions_dir()) == os.path.expanduser("~/.local/share/memdash/sessions")


def test_sessions_are_listed_and_pruned_oldest_first(tmp_path):
    # Given three recordings started an hour apart, and a broken file
    t = time.time() - 10_000
    for n in range(3):
        rec = Recorder(tmp_path / f"{n}.sqlite", started_at=t + 3600 * n)
        rec.add_process(1, 1.0, False, {"name": "p"})
        rec.add_process(2, 1.0, False, {"name": "q"})
        s = [sample(t + 3600 * n), sample(t + 3600 * n + 60)]
        rec.add_batches([{"pid": 1, "children": False, "samples": s}])
        rec.close()
    (tmp_path / "junk.sqlite").write_text("junk")
    os.utime(tmp_path / "junk.sqlite", (t - 100, t - 100))  # the oldest
    # When listed
    sessions = list_sessions(tmp_path)
    # Then newest first, with length, processes and size; the broken one says why
    good = [s for s in sessions if "error" not in s]
    assert [s["path"] for s in good] == [str(tmp_path / f"{n}.sqlite") for n in (2, 1, 0)]
    assert good[0]["length"] == pytest.approx(60, abs=0.01) and good[0]["processes"] == 2
    assert all(s["size"] > 0 for s in good)
    assert [s for s in sessions if "error" in s][0]["path"].endswith("junk.sqlite")
    # When one is being recorded, and pruning keeps the newest one
    with Recorder(tmp_path / "0.sqlite"):
        removed = prune(tmp_path, keep=1)
    # Then the others go, but never the one being recorded
    assert sorted(p.name for p in removed) == ["1.sqlite", "junk.sqlite"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.sqlite", "2.sqlite"]
    # and a size limit below one file removes all but what is in use
    assert [p.name for p in prune(tmp_path, max_size=1)] == ["2.sqlite", "0.sqlite"]


def test_fields_match_the_documented_sample_format():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for field in FIELDS:
        assert f'"{field}"' in doc


def test_a_sample_becomes_the_same_row_whichever_figures_it_carries():
    # Given a statm-only sample (the fast path), and the same with detail and heap figures
    statm = {"t": 12.3456, "rss": 10 << 20, "vms": 99 << 20, "shared": 3000, "text": 511,
             "data": 1 << 20}  # fmt: skip
    full = {**statm, "uss": 5 << 20, "pss": 6 << 20, "swap": 0, "anon": 4 << 20,
            "heap_used": 123, "heap_total": 456, "external": 7, "children": 2}  # fmt: skip
    # When each is made a row (t0 = 10 s), and both are written to a samples table
    fast, slow = recrows._row(1, 10_000, statm), recrows._row(1, 10_000, full)
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    writer = recrows.RowWriter(db, 10_000)
    writer.process(4242, 1.0, False, {})
    writer.samples({1: [fast, (*slow[:1], slow[1] + 100, *slow[2:])]}, stats := {})
    # Then both have the statm figures in KiB (rounded) and ms after t0; the fast path names
    # only those, and its other columns are stored empty as the general one's would be
    assert fast == slow[:7] == (1, 2346, 10240, 101376, 3, 0, 1024)
    assert slow[7:] == (5120, 6144, 0, 4096, 123, 456, 7, 2)
    stored = db.execute("SELECT * FROM samples ORDER BY t").fetchall()
    assert stored == [(*fast, *(None,) * 8), (1, 2446, *slow[2:])]
    assert stats == {1: (2346, 2446, 2)}
    # And a sample with a None figure takes the general path instead of failing
    assert recrows._row(1, 10_000, {**statm, "shared": None})[4] is None
