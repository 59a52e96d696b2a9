"""Cost of watching a process tree: one tree of 50 processes vs its 50 members one by one.

A parent starts 49 idle children (50 processes). memdash's sampler runs at 10 Hz in this
process, with one viewer (its batches JSON-encoded, as the server would), in two ways:
  tree          watch (parent, children=True): every member a series, plus the total
  one by one    watch each of the 50 processes (children=False)
The sampler thread's CPU time (``time.thread_time`` inside the loop) is measured over
``--seconds`` of sampling each, after one second of settling. Target (issue 12): the tree
costs at most 2x the one-by-one watches.

    .venv/bin/python benchmarks/bench_trees.py [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

from _common import header, note, print_table, progress

from dashboard.sampler import Sampler

PARENT = """
import subprocess, sys, time
kids = [subprocess.Popen(["sleep", "600"]) for _ in range(int(sys.argv[1]))]
print("ready", flush=True)
sys.stdin.read()
for kid in kids:
    kid.kill()
"""


class Timed(Sampler):
    """The sampler, counting the CPU time its loop thread spends in ticks."""

    cpu = 0.0

    def tick(self) -> None:
        start = time.thread_time()
        super().tick()
        self.cpu += time.thread_time() - start


def encode(event: str, payload: dict | list, to: object) -> None:
    json.dumps(payload)  # what the server pays per emit (Socket.IO encodes it once)


def measure(parent: subprocess.Popen, pids: list[int], tree: bool, seconds: float) -> dict:
    sampler = Timed(interval=0.1, detail_interval=1.0, emit=encode)
    if tree:
        sampler.watch(parent.pid, True, "viewer")
    else:
        for pid in pids:
            sampler.watch(pid, False, "viewer")
    sampler.start()
    try:
        threading.Event().wait(1.0)  # settling: the first ticks open every reader
        cpu0, ticks0, t0 = sampler.cpu, sampler.ticks, time.monotonic()
        threading.Event().wait(seconds)
        cpu, ticks = sampler.cpu - cpu0, sampler.ticks - ticks0
        wall = time.monotonic() - t0
        series = len(sampler.targets())
    finally:
        sampler.stop()
    return {"cpu": cpu, "ticks": ticks, "wall": wall, "series": series}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--processes", type=int, default=50)
    args = parser.parse_args()
    header("Watching a tree vs its members one by one (sampler CPU)")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(args.processes - 1)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout.readline().strip() == "ready"
        import psutil

        pids = [parent.pid, *(c.pid for c in psutil.Process(parent.pid).children())]
        results = {}
        for name, tree in (("one by one", False), ("tree", True)):
            progress(f"{name}: {args.seconds:.0f} s")
            results[name] = measure(parent, pids, tree, args.seconds)
    finally:
        parent.stdin.close()
        parent.wait(10)
    rows = []
    for name, r in results.items():
        per_tick = r["cpu"] / max(1, r["ticks"]) * 1e3
        share = r["cpu"] / r["wall"] * 100
        rows.append((name, r["series"], r["ticks"], f"{per_tick:.2f}", f"{share:.1f}%"))
    print_table(["watch", "series", "ticks", "CPU ms / tick", "CPU of one core"], rows)
    ratio = results["tree"]["cpu"] / max(1e-9, results["one by one"]["cpu"])
    verdict = "PASS" if ratio <= 2.0 else "FAIL"
    note(
        f"tree / one by one = {ratio:.2f} (target <= 2.0): {verdict}. The tree samples the same "
        f"{len(pids)} processes (each a series) plus its total, and finds new members once a "
        "second (one pass over /proc)."
    )


if __name__ == "__main__":
    main()
