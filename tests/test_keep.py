"""Keeping what memdash saw: the recorder sink on a real sampler, `memdash record`, `export`,
`report`, `sessions` and tool artefacts, with real processes, real files and real Chromium."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from dashboard import errors
from dashboard.cli import SUBCOMMANDS
from dashboard.recorded import Recording
from dashboard.recorder_sink import RecorderSink
from dashboard.recording import Recorder
from dashboard.report import render, report_data
from dashboard.sampler import Sampler
from dashboard.sessions import artefact_dir, artefact_path, list_artefacts, prune
from tests._browser import launch_chromium
from tests.conftest import ROOT, MiB, wait_for


def memdash(*args: str, **kwargs) -> subprocess.Popen:
    """``memdash <command> ...`` in a child process (through ``python -m dashboard`` once the
    command is registered there, else its module's main)."""
    command, rest = args[0], list(args[1:])
    if command in SUBCOMMANDS:
        argv = [sys.executable, "-m", "dashboard", command, *rest]
    else:
        run = (
            f"import sys; from dashboard.cli import {command} as m; sys.exit(m.main(sys.argv[1:]))"
        )
        argv = [sys.executable, "-c", run, *rest]
    return subprocess.Popen(argv, cwd=ROOT, text=True, **kwargs)


def memdash_run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = memdash(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# -- the sink on a real sampler ------------------------------------------------------------------


def test_the_sink_records_what_a_real_sampler_reads(tmp_path, allocator):
    # Given a real sampler recording a real process through the sink
    path = tmp_path / "s.sqlite"
    recorder = Recorder(path)
    sink = RecorderSink(recorder)
    seen: list[dict] = []

    class Tap:
        def flushed(self, batches):
            seen.extend(s for _, samples in batches for s in samples)

        def exited(self, target, t, reason):
            pass

    sampler = Sampler(interval=0.05, detail_interval=0.2)
    sampler.add_sink(sink)
    sampler.add_sink(Tap())
    try:
        sampler.watch(allocator.pid, False, "viewer")
        sampler.start()
        # When it grows, then exits
        allocator.alloc(20)
        wait_for(lambda: any(s["rss"] > 20 * MiB for s in seen), message="growth sampled")
        wait_for(lambda: any("uss" in s for s in seen), message="a detail read")
        create_time = psutil.Process(allocator.pid).create_time()
        allocator.exit(0)
        wait_for(lambda: sampler.target(allocator.pid).exited_at, message="exit seen")
    finally:
        sampler.stop()
    assert recorder.flush()
    recorder.close()
    assert sink.status() == {"recording": True, "path": str(path), "error": None,
                             "dropped": 0, "written": len(seen)}  # fmt: skip
    # Then the file holds the process, every sample the sampler read, and the exit
    with Recording(path) as rd:
        (process,) = rd.processes()
        assert process["pid"] == allocator.pid and process["name"].startswith("python")
        assert process["create_time"] == pytest.approx(create_time, abs=0.01)
        back = rd.samples(process["id"])
        assert [round(s["t"], 3) for s in back] == [round(s["t"], 3) for s in seen]
        assert [s["rss"] for s in back] == [s["rss"] for s in seen]
        assert any("uss" in s for s in back)  # the detail reads a viewer gets are kept too
        assert [e["reason"] for e in rd.exits()] == ["exited"]


SAMPLING = textwrap.dedent(
    """
    import subprocess, sys
    from dashboard.recorder_sink import RecorderSink
    from dashboard.recording import Recorder
    from dashboard.sampler import Sampler

    class Say:
        def flushed(self, batches):
            for _, samples in batches:
                for s in samples:
                    print(repr(s["t"]), flush=True)
        def exited(self, target, t, reason):
            pass

    child = subprocess.Popen(["sleep", "120"])
    sampler = Sampler(interval=0.1)
    sampler.add_sink(RecorderSink(Recorder(sys.argv[1])))
    sampler.add_sink(Say())
    sampler.keep(child.pid, True, "cli")
    sampler.start()
    child.wait()
    """
)


def test_kill_9_of_a_sampling_process_keeps_every_sample_older_than_two_seconds(tmp_path):
    # Given a process that samples a child and records it through the sink
    path = tmp_path / "crash.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", SAMPLING, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        sent = [float(proc.stdout.readline())]
        while sent[-1] < sent[0] + 4:  # four seconds of samples (a tree gives two series)
            sent.append(float(proc.stdout.readline()))
        # When it is killed with SIGKILL (its sleep child too)
        killed_at = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        sent += [float(line) for line in proc.stdout.read().split()]
    finally:
        proc.kill()
        proc.wait()
    # Then the file opens and holds every sample flushed more than 2 s before the kill
    old = {round(t, 3) for t in sent if t < killed_at - 2}
    assert len(old) >= 15
    with Recording(path) as rd:
        processes = rd.processes()
        assert any(p["children"] for p in processes)
        kept = {round(s["t"], 3) for p in processes for s in rd.samples(p["id"])}
    assert not old - kept


def test_a_recorder_error_shows_in_the_sinks_status(tmp_path):
    # Given a sink whose file was made read-only behind its back (the writer fails on commit)
    path = tmp_path / "s.sqlite"
    told = []
    recorder = Recorder(path, on_error=told.append)
    sink = RecorderSink(recorder)
    recorder._db.execute("PRAGMA query_only = ON")  # a disk that refuses every write
    sampler = Sampler(interval=0.05)
    child = subprocess.Popen(["sleep", "30"])
    sampler.add_sink(sink)
    try:
        sampler.keep(child.pid, False, "cli")
        sampler.start()
        # Then sampling goes on, and the status says recording stopped, and why
        wait_for(lambda: not sink.status()["recording"], message="the error surfaces")
        n = sampler.ticks
        wait_for(lambda: sampler.ticks > n + 3, message="sampling goes on")
    finally:
        sampler.stop()
        child.kill()
        child.wait()
        recorder.close()
    assert "stopped" in sink.status()["error"] and told == [sink.status()["error"]]


# -- memdash record ----------------------------------------------------------------------------

GROWER = textwrap.dedent(
    """
    import json, sys, time
    held = []
    def vmrss():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    for i in range(8):
        block = bytearray(8 * 2**20)
        for k in range(0, len(block), 4096):
            block[k] = 1
        held.append(block)
        time.sleep(0.3)  # still: the recorder samples the same figure /proc gives now
        print(json.dumps([time.time(), vmrss()]), flush=True)
        time.sleep(0.3)
    sys.exit(3)
    """
)


def test_record_a_command_then_export_csv_matches_proc(tmp_path):
    # Given `memdash record -- python GROWER` (which reads its own VmRSS as it grows)
    path, out = tmp_path / "s.sqlite", tmp_path / "s.csv"
    done = memdash_run("record", "-o", str(path), "--", sys.executable, "-c", GROWER)
    # Then its stdout passed through, memdash exited with its exit code
    assert done.returncode == 3, done.stderr
    readings = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(readings) == 8
    # When exported to CSV
    exported = memdash_run("export", str(path), "--format", "csv", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    with open(out) as f:
        rows = list(csv.DictReader(f))
    # Then every /proc reading has CSV samples beside it (±0.1 s) within 1 % of it
    assert len({r["pid"] for r in rows}) == 1
    for t, rss in readings:
        near = [int(r["rss"]) for r in rows if abs(float(r["time"]) - t) <= 0.1]
        assert near, f"no sample near {t}"
        assert any(abs(v - rss) <= rss * 0.01 for v in near), (rss, near)
    with Recording(path) as rd:
        assert any(p["children"] for p in rd.processes())  # recorded as a tree
        assert {e["reason"] for e in rd.exits()} == {"exited"}


TRAPPER = textwrap.dedent(
    """
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_record_forwards_sigterm_and_exits_with_the_commands_code(tmp_path):
    path = tmp_path / "s.sqlite"
    proc = memdash("record", "-o", str(path), "--", sys.executable, "-c", TRAPPER,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_for(lambda: path.exists() and Recording(path).processes(), message="recording")
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    finally:
        proc.kill()
    assert proc.returncode == 7
    with Recording(path) as rd:
        assert rd.processes()[0]["samples"] > 0


def test_record_pids_for_a_duration(tmp_path):
    sleepers = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    path = tmp_path / "s.sqlite"
    try:
        done = memdash_run("record", "--pid", str(sleepers[0].pid), "--pid",
                           str(sleepers[1].pid), "--duration", "1", "--interval", "0.05",
                           "-o", str(path))  # fmt: skip
    finally:
        for s in sleepers:
            s.kill()
            s.wait()
    assert done.returncode == 0, done.stderr
    with Recording(path) as rd:
        got = {p["pid"]: p["samples"] for p in rd.processes()}
    assert set(got) == {s.pid for s in sleepers} and min(got.values()) >= 10


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--"], 2, "no command after --"),
        (["--pid", "1", "--duration", "0"], 2, "--duration must be more than 0"),
        (["--pid", "1", "--duration", "-5"], 2, "--duration must be more than 0"),
        ([], 2, "give --pid PID"),
        (["--pid", "nope"], 2, "--pid nope"),
        (["--", "memdash-no-such-command"], 127, "command not found"),
    ],
)
def test_record_refuses_bad_input_in_one_line(tmp_path, args, code, message):
    done = memdash_run("record", "-o", str(tmp_path / "s.sqlite"), *args)
    assert done.returncode == code
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.sqlite").exists() or code == 127


def test_record_refuses_a_file_being_recorded(tmp_path):
    path = tmp_path / "s.sqlite"
    with Recorder(path):
        holder = memdash("record", "-o", str(path), "--pid", str(os.getpid()), "--duration", "1",
                         stderr=subprocess.PIPE)  # fmt: skip
        _, err = holder.communicate(timeout=30)
    assert holder.returncode == 2 and "already" in err


# -- export, report: bad files ------------------------------------------------------------------


def bad_files(tmp_path) -> dict:
    good = tmp_path / "good.sqlite"
    with Recorder(good) as rec:
        rec.add_process(1, 1.0, False, {"name": "x"})
        t = time.time()
        samples = [{"t": t + i / 10, "rss": 4096 * i} for i in range(3000)]
        rec.add_batches([{"pid": 1, "children": False, "samples": samples}])
    text = tmp_path / "text.sqlite"
    text.write_text("hello")
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    newer = tmp_path / "newer.sqlite"
    newer.write_bytes(good.read_bytes())
    import sqlite3

    db = sqlite3.connect(newer)
    db.execute("PRAGMA user_version = 99")
    db.close()
    return {"not an SQLite file": text, "truncated": cut, "newer memdash": newer,
            "no recording": tmp_path / "missing.sqlite"}  # fmt: skip


@pytest.mark.parametrize("command", ["export", "report"])
def test_export_and_report_refuse_bad_files_in_one_line(tmp_path, command):
    for words, path in bad_files(tmp_path).items():
        done = memdash_run(command, str(path), "-o", str(tmp_path / "out.html"))
        assert done.returncode == 2, (words, done.stderr)
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- the HTML report ---------------------------------------------------------------------------


def hour_of(path, processes: int = 5, rate: float = 10.0) -> float:
    """A synthetic hour of ``processes`` at ``rate`` Hz, each with one 1-sample spike."""
    t0 = 1_800_000_000.0
    with Recorder(path, started_at=t0) as rec:
        for p in range(processes):
            rec.add_process(100 + p, 1.0, False, {"name": f"p{p}", "cmdline": f"p{p} --serve"})
        n = int(3600 * rate)
        for start in range(0, n, 600):
            batches = []
            for p in range(processes):
                samples = []
                for i in range(start, min(n, start + 600)):
                    rss = (100 + p) * MiB + i * 4096 + (500 * MiB if i == n // 3 + p else 0)
                    s = {"t": t0 + i / rate, "rss": rss, "vms": 4 * rss, "shared": MiB,
                         "text": MiB, "data": rss // 2}  # fmt: skip
                    if i % int(rate) == 0:
                        s.update(uss=rss - MiB, pss=rss - MiB // 2, swap=0, anon=rss // 2)
                    samples.append(s)
                batches.append({"pid": 100 + p, "children": False, "samples": samples})
            rec.add_batches(batches)
            rec.flush()
    return t0


def test_a_report_of_an_hour_of_five_processes_is_small_and_keeps_spikes(tmp_path):
    path = tmp_path / "hour.sqlite"
    hour_of(path)
    with Recording(path) as rd:
        data = report_data(rd)
        size = len(render(rd).encode())
    assert size < 5 * 2**20, size
    assert len(data["charts"]) == 5
    for p, chart in enumerate(data["charts"]):
        rss = chart["series"]["rss"]
        assert len(rss["max"]) <= 1500
        assert max(rss["max"]) * 1024 >= (100 + p) * MiB + 500 * MiB  # the spike is there (KiB)


def test_the_report_draws_offline_in_chromium_with_the_network_blocked(tmp_path):
    from playwright.sync_api import sync_playwright

    # Given a report of a real recording, with a tool result and a mark
    path = tmp_path / "s.sqlite"
    done = memdash_run("record", "-o", str(path), "--interval", "0.05", "--", "sleep", "1")
    assert done.returncode == 0, done.stderr
    with Recorder(path) as rec:
        rec.add_mark(time.time(), "tool", "find the leak </script><b>x</b>")
    report = tmp_path / "report.html"
    made = memdash_run("report", str(path), "-o", str(report))
    assert made.returncode == 0, made.stderr
    asked: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            errors_seen: list[str] = []
            page.on("pageerror", lambda e: errors_seen.append(str(e)))

            def block(route):
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    asked.append(route.request.url)
                    route.abort()

            page.route("**/*", block)
            page.goto(report.as_uri())
            # Then a trace is drawn, nothing was asked of the network, and no script failed
            page.wait_for_function("Number(document.body.dataset.drawn) >= 1", timeout=20_000)
            traces = page.eval_on_selector_all(
                ".js-plotly-plot .scatterlayer .trace", "e => e.length"
            )
            assert traces >= 1
            assert "find the leak </script><b>x</b>" in page.inner_text("body")
        finally:
            browser.close()
    assert asked == [] and errors_seen == []


# -- sessions and artefacts ---------------------------------------------------------------------


def test_sessions_lists_and_prunes_with_artefacts(tmp_path):
    for n in range(3):
        with Recorder(tmp_path / f"{n}.sqlite", started_at=time.time() - 1000 + n) as rec:
            rec.add_process(1, 1.0, False, {"name": "x"})
            rec.add_batches([{"pid": 1, "children": False,
                              "samples": [{"t": time.time(), "rss": 4096}]}])  # fmt: skip
        (artefact_dir(tmp_path / f"{n}.sqlite", create=True) / "heap.heapsnapshot").write_text("{}")
    listed = memdash_run("sessions", "--dir", str(tmp_path))
    assert listed.returncode == 0 and listed.stdout.count(".sqlite") == 3
    assert "start" in listed.stdout and "processes" in listed.stdout
    pruned = memdash_run("sessions", "--dir", str(tmp_path), "--keep", "1")
    assert pruned.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.sqlite", "2.sqlite.artefacts"]
    bad = memdash_run("sessions", "--dir", str(tmp_path), "--max-size", "lots")
    assert bad.returncode == 2 and "--max-size" in bad.stderr
    assert prune(tmp_path, max_size=10**9) == []


@pytest.mark.parametrize(
    "name",
    ["../2.sqlite", "..", "%2e%2e%2f2.sqlite", "..%2f2.sqlite", "a/../heap.heapsnapshot",
     "/etc/passwd", "heap.heapsnapshot/", "", "heap.heapsnapshot\0", "link"],
)  # fmt: skip
def test_artefact_names_are_only_plain_names_from_the_listing(tmp_path, name):
    session = tmp_path / "s.sqlite"
    folder = artefact_dir(session, create=True)
    (folder / "heap.heapsnapshot").write_text("{}")
    (folder / "link").symlink_to(tmp_path / "s.sqlite")
    assert [a["name"] for a in list_artefacts(session)] == ["heap.heapsnapshot"]
    assert artefact_path(session, "heap.heapsnapshot") == folder / "heap.heapsnapshot"
    with pytest.raises(errors.NotFound):
        artefact_path(session, name)
