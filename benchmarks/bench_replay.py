"""Replay (`memdash open FILE`): how fast a long recording opens and draws.

A synthetic hour of ``--pids`` processes at 10 Hz (every sample kept in the file; USS, PSS,
swap and anon on one sample in ten; one 1-sample spike of +300 MiB per process) is written
with the Recorder, then served by ``python -m dashboard open FILE --port 0``. Measured:

1. open: from starting the command to its answering HTTP;
2. draw: one viewer sends its ``--pids`` watches at once (as the page does), ``max_points``
   1500, whole session, and the time until the last ack is in; each ack is checked to hold at
   most 1500 samples and the spike;
3. play: 10x for a few seconds; samples received against what the file holds for that span.

    .venv/bin/python benchmarks/bench_replay.py [--pids 20] [--minutes 60] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import (
    ROOT,
    MiB,
    cpu_seconds,
    header,
    note,
    print_table,
    progress,
    synthetic_recording,
    wait_for,
)

from dashboard.recorded import Recording
from dashboard.testing import _SERVING, Viewer

SPIKE = 300 * MiB


def synthetic(path: Path, pids: int, minutes: float) -> tuple[int, float]:
    """(samples written, seconds it took)."""
    n = int(minutes * 600)
    began = time.perf_counter()
    written = synthetic_recording(
        path, pids, n, time.time() - n / 10, lambda i, p: SPIKE if i == n // 3 + 97 * p else 0
    )
    return written, time.perf_counter() - began


class Opened:
    def __init__(self, path: Path):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="memdash-open-", suffix=".txt")
        argv = [sys.executable, "-m", "dashboard", "open", str(path), "--no-browser", "--port", "0"]
        began = time.perf_counter()
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        port = wait_for(self._port, timeout=60, message="memdash open's URL")
        self.url = f"http://127.0.0.1:{port}"
        self.seconds = time.perf_counter() - began

    def _port(self) -> str | None:
        with open(self.log.name) as f:
            match = _SERVING.search(f.read())
        if match is None and self.proc.poll() is not None:
            raise RuntimeError("memdash open exited")
        return match and match.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def draw(url: str, pids: list[int], max_points: int) -> tuple[float, float, list[dict]]:
    """(wall seconds until the last ack, server CPU seconds meanwhile, the acks)."""
    viewer = Viewer(url, keep=False)
    acks: dict[int, dict] = {}
    done = threading.Event()

    def answered(pid: int):
        def got(ack):
            acks[pid] = ack
            if len(acks) == len(pids):
                done.set()

        return got

    try:
        began = time.perf_counter()
        for pid in pids:  # all at once, as the page's watches go out on connect
            viewer.sio.emit("watch", {"pid": pid, "max_points": max_points},
                            callback=answered(pid))  # fmt: skip
        if not done.wait(120):
            raise RuntimeError(f"only {len(acks)} of {len(pids)} acks within 120 s")
        return time.perf_counter() - began, 0.0, [acks[p] for p in pids]
    finally:
        viewer.close()


def play(url: str, pids: list[int], seconds: float) -> tuple[int, float]:
    """(samples received, recording seconds played) over ``seconds`` of 10x play."""
    viewer = Viewer(url, keep=False)
    try:
        for pid in pids:
            viewer.call("watch", {"pid": pid, "max_points": 100}, timeout=60)
        state = viewer.call("seek", {"t": 0})
        start = state["t"]
        viewer.call("play", {"speed": 10})
        time.sleep(seconds)  # a span of play to count over, not a wait for a condition
        end = viewer.call("pause")["t"]
        wait_for(lambda: viewer.counts()[1] > 0, timeout=10)
        time.sleep(0.5)  # the last step's messages in flight
        return viewer.counts()[1], end - start
    finally:
        viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pids", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--max-points", type=int, default=1500)
    parser.add_argument("--quick", action="store_true", help="10 minutes instead of an hour")
    args = parser.parse_args()
    if args.quick:
        args.minutes = 10
    header("Replay: open and draw a long recording")
    with tempfile.TemporaryDirectory(prefix="memdash-bench-replay-") as tmp:
        path = Path(tmp) / "session.sqlite"
        progress(f"writing {args.minutes:g} min x {args.pids} processes at 10 Hz")
        written, took = synthetic(path, args.pids, args.minutes)
        with Recording(path) as rec:
            assert sum(p["samples"] for p in rec.processes()) == written  # every sample kept
        size = path.stat().st_size
        progress("opening it")
        server = Opened(path)
        try:
            pids = [1000 + p for p in range(args.pids)]
            cpu0 = cpu_seconds(server.proc.pid)
            wall, _, acks = draw(server.url, pids, args.max_points)
            cpu = cpu_seconds(server.proc.pid) - cpu0
            points = [len(a["samples"]) for a in acks]
            spikes = sum(max(s["rss"] for s in a["samples"]) >= SPIKE for a in acks)
            assert all("error" not in a for a in acks), acks[0]
            progress("playing at 10x")
            received, played = play(server.url, pids, 3.0)
        finally:
            server.stop()
    expected = played * 10 * args.pids
    print_table(
        ["what", "figure", "target"],
        [
            ["recording", f"{written} samples, {size / MiB:.1f} MiB (written in {took:.1f} s)",
             "every sample kept"],
            ["open: command to serving", f"{server.seconds:.2f} s", ""],
            [f"draw: {args.pids} watch acks, max_points {args.max_points}, all at once",
             f"{wall:.2f} s (server CPU {cpu:.2f} s)", "< 2 s"],
            ["samples per ack (max)", f"{max(points)}", f"<= {args.max_points}"],
            ["acks showing the 1-sample spike", f"{spikes} of {args.pids}", "all"],
            ["play 10x for 3 s: samples received / in the file's span",
             f"{received} / {expected:.0f} ({played:.1f} s of recording)", "all"],
        ],
    )  # fmt: skip
    note(f"Load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")


if __name__ == "__main__":
    main()
