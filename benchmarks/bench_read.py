"""Cost of one sample: memdash's readers vs a raw /proc read, in the same process and run.

Fast figures (/proc/PID/statm of an idle Python child):
  raw open+read+close    ``os.open`` + ``os.read`` + ``os.close``, no parsing (the baseline)
  raw open() builtin      ``with open(path, "rb") as f: f.read()``, no parsing
  raw pread, kept fd      ``os.pread(fd, 128, 0)`` on a descriptor opened once, no parsing
  StatmReader.read()      memdash's per-tick path: pread on a kept fd + parse into a dict
  read_fast(pid)          memdash's one-off: open a StatmReader, read, close
Detail figures of a ~300 MB process (a child holding 300 MiB it has touched):
  read_detail(pid)        memdash: /proc/PID/smaps_rollup, parsed
  memory_full_info()      psutil.Process(pid).memory_full_info() (also smaps_rollup on this
                          kernel, plus statm)
Each is timed with ``timeit``: ``--repeat`` runs of N calls (N chosen so one run takes ~0.2 s),
best and median run reported as µs per call. Target (issue): memdash's fast read <= 2x raw.

    .venv/bin/python benchmarks/bench_read.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import timeit

import psutil
from _common import IdleProcesses, MiB, header, note, print_table, progress, rss, wait_for

from dashboard import memory

BIG = """
import sys, time
block = bytearray(300 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
print("ready", flush=True)
while True:
    time.sleep(1e6)
"""


def measure(fn, repeat: int, target_s: float) -> tuple[float, float]:
    """(best, median) seconds per call over ``repeat`` timeit runs."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # at least 0.2 s
    number = max(1, int(number * target_s / 0.2))
    times = [t / number for t in timer.repeat(repeat=repeat, number=number)]
    return min(times), statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter repetitions")
    p.add_argument("--repeat", type=int, help="timeit runs per reader (default 15; quick 5)")
    args = p.parse_args()
    repeat = args.repeat or (5 if args.quick else 15)
    target_s = 0.05 if args.quick else 0.2
    header("memdash read cost: one sample vs a raw /proc read")

    with IdleProcesses(1) as idle:
        pid = idle.pids[0]
        path = f"/proc/{pid}/statm"
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        reader = memory.StatmReader(pid)

        def raw_os():
            f = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return os.read(f, 128)
            finally:
                os.close(f)

        def raw_builtin():
            with open(path, "rb") as f:
                return f.read()

        def raw_pread():
            return os.pread(fd, 128, 0)

        fast = [
            ("raw open+read+close (os.*)", raw_os),
            ("raw open() builtin + read", raw_builtin),
            ("raw os.pread on a kept fd", raw_pread),
            ("memdash StatmReader.read() (per tick)", reader.read),
            ("memdash read_fast(pid) (one-off)", lambda: memory.read_fast(pid)),
        ]
        results = {}
        for name, fn in fast:
            progress(f"timing {name}")
            results[name] = measure(fn, repeat, target_s)
        reader.close()
        os.close(fd)

    base = results["raw open+read+close (os.*)"][0]
    pread = results["raw os.pread on a kept fd"][0]
    rows = [
        [
            name,
            f"{best * 1e6:.2f}",
            f"{med * 1e6:.2f}",
            f"{best / base:.2f}x",
            f"{best / pread:.2f}x",
        ]
        for name, (best, med) in results.items()
    ]
    print("### Fast read: /proc/PID/statm of an idle Python child\n")
    print_table(
        ["reader", "best µs/call", "median µs/call", "vs raw open+read+close", "vs raw pread"],
        rows,
    )
    tick = results["memdash StatmReader.read() (per tick)"][0] / base
    oneoff = results["memdash read_fast(pid) (one-off)"][0] / base
    verdict = "meets" if tick <= 2 else "misses"
    note(
        f"Target: memdash's fast read <= 2x a raw statm read. StatmReader.read() (what the "
        f"sampler calls every tick) costs {tick:.2f}x the raw open+read+close: {verdict} it; "
        f"read_fast() (one-off, opens and closes a descriptor) costs {oneoff:.2f}x. "
        "Ratios use the best run (least disturbed by the rest of the machine)."
    )

    progress("starting a ~300 MB child")
    big = subprocess.Popen(
        [sys.executable, "-c", BIG], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    try:
        wait_for(lambda: big.stdout.readline().strip() == "ready", 60, "the 300 MB child")
        size = rss(big.pid)
        proc = psutil.Process(big.pid)
        detail = [
            ("memdash read_detail(pid) (smaps_rollup)", lambda: memory.read_detail(big.pid)),
            ("psutil memory_full_info()", proc.memory_full_info),
        ]
        drows = {}
        for name, fn in detail:
            progress(f"timing {name}")
            drows[name] = measure(fn, repeat, target_s)
    finally:
        big.kill()
        big.wait()
    dbase = drows["psutil memory_full_info()"][0]
    print(f"### Detail read: a child with RSS {size / MiB:.0f} MiB\n")
    print_table(
        ["reader", "best µs/call", "median µs/call", "vs psutil"],
        [
            [name, f"{best * 1e6:.1f}", f"{med * 1e6:.1f}", f"{best / dbase:.2f}x"]
            for name, (best, med) in drows.items()
        ],
    )
    note(
        f"{repeat} timeit runs per reader, each ~{target_s:g} s of back-to-back calls; "
        f"psutil {psutil.__version__}."
    )


if __name__ == "__main__":
    main()
