"""Server CPU: memdash watching 20 PIDs at 10 Hz for 10 viewers, vs psrecord on the same PIDs.

Set-up: ``--pids`` idle Python children; the real server (``python -m dashboard --interval
0.1``); ``--viewers`` python-socketio clients in this process, each watching every PID and saying it
draws RSS, as the page does with its default metric (``--draw uss``: a metric read from
smaps_rollup, so USS/PSS/swap are read every second instead of every 10 s); and,
at the same time, one ``psrecord PID --interval 0.1 --duration D --log FILE`` per PID (psrecord
watches one PID per process). After a warm-up, CPU time (user + sys, psutil ``cpu_times``) is
taken from the server and from every psrecord process at the start and end of a ``--seconds``
window; the delta over the window is the CPU used, shown as % of one core. Samples delivered
per viewer per second (and psrecord's log lines per second) show both actually did the work.

The children are idle, so their RSS holds still and the growth estimator judges each window
without pairing its points; ``--busy`` children allocate and free a few pages four times a
second, so every estimate pairs them (the dearer case).

By default memdash and psrecord run at the same time (one window, half the wall time); the
machine has room (see the "load" lines), but ``--sequential`` measures them one after the
other if you suspect they disturb each other.

    .venv/bin/python benchmarks/bench_cpu.py [--seconds 60] [--quick] [--sequential] [--busy]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _common import IDLE, IdleProcesses, header, note, print_table, progress

from dashboard.testing import Server, Viewer

# A child whose RSS moves every quarter second: it keeps up to 20 buffers of 4-256 KiB, filled
# (so resident), dropping the oldest.
BUSY = """import random, time
keep = []
while True:
    keep.append(b"x" * random.randint(1, 64) * 4096)
    del keep[:-20]
    time.sleep(0.25)
"""


def cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def psrecord_exe() -> str:
    exe = Path(sys.executable).parent / "psrecord"
    if exe.exists():
        return str(exe)
    found = shutil.which("psrecord")
    if not found:
        sys.exit("psrecord is not installed: .venv/bin/pip install psrecord (the bench extra)")
    return found


class Psrecords:
    """One psrecord process per PID, started together."""

    def __init__(self, pids: list[int], interval: float, duration: float, logdir: str):
        self.logs = [os.path.join(logdir, f"psrecord-{pid}.txt") for pid in pids]
        exe = psrecord_exe()
        self.procs = [
            subprocess.Popen(
                [exe, str(pid), "--interval", str(interval), "--duration", str(duration)]
                + ["--log", log],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, log in zip(pids, self.logs, strict=True)
        ]
        self.ps = [psutil.Process(p.pid) for p in self.procs]
        self.started = time.monotonic()

    def cpu(self) -> float:
        return sum(cpu(p) for p in self.ps)

    def wait(self) -> float:
        """Reap them all; total CPU (incl. start-up) from the kernel's rusage."""
        total = 0.0
        for p in self.procs:
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            total += usage.ru_utime + usage.ru_stime
        return total

    def lines_between(self, t0: float, t1: float) -> int:
        """Log lines whose elapsed_time falls in [t0, t1) (seconds since psrecord started)."""
        n = 0
        for log in self.logs:
            with open(log) as f:
                for line in f:
                    if line.startswith("#") or not line.strip():
                        continue
                    if t0 <= float(line.split()[0]) < t1:
                        n += 1
        return n

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60, help="measured window (default 60)")
    p.add_argument("--quick", action="store_true", help="15 s window")
    p.add_argument("--pids", type=int, default=20, help="watched processes (20)")
    p.add_argument("--viewers", type=int, default=10, help="Socket.IO viewers (10)")
    p.add_argument("--interval", type=float, default=0.1, help="sampling interval (0.1 s)")
    p.add_argument("--warmup", type=float, default=3, help="seconds before the window (3)")
    p.add_argument("--sequential", action="store_true", help="memdash first, then psrecord")
    p.add_argument("--draw", default="rss", help="the field the viewers draw (rss; uss: detail)")
    p.add_argument("--busy", action="store_true", help="children whose RSS moves (not idle)")
    args = p.parse_args()
    if args.quick:
        args.seconds = 15
    header("memdash server CPU vs psrecord")
    me = psutil.Process()
    logdir = tempfile.mkdtemp(prefix="memdash-bench-psrecord-")
    rows, load = [], []

    with IdleProcesses(args.pids, BUSY if args.busy else IDLE) as idle:
        pids = idle.pids

        def run_psrecord_only():
            progress(f"psrecord x{len(pids)}: {args.seconds:.0f} s window")
            rec = Psrecords(pids, args.interval, args.warmup + args.seconds + 3, logdir)
            try:
                time.sleep(args.warmup)
                return measure_psrecord(rec, args)
            finally:
                rec.kill()

        with Server(interval=args.interval) as server:
            sp = psutil.Process(server.pid)
            progress(f"server pid {server.pid}; connecting {args.viewers} viewers")
            viewers = [Viewer(server.url, keep=False) for _ in range(args.viewers)]
            for v in viewers:
                v.call("draw", {"fields": [args.draw]})
                for pid in pids:
                    v.watch(pid)
            errors = [e for v in viewers for e in v.errors]
            if errors:
                sys.exit(f"watch refused: {errors[0]}")
            rec = None
            if not args.sequential:
                rec = Psrecords(pids, args.interval, args.warmup + args.seconds + 3, logdir)
            time.sleep(args.warmup)
            progress(f"measuring {args.seconds:.0f} s")
            c0, m0, counts0 = cpu(sp), cpu(me), [v.counts() for v in viewers]
            r0 = rec.cpu() if rec else 0.0
            w0 = time.monotonic()
            sys0 = psutil.cpu_times()
            time.sleep(args.seconds)
            c1, m1, counts1 = cpu(sp), cpu(me), [v.counts() for v in viewers]
            r1 = rec.cpu() if rec else 0.0
            w1 = time.monotonic()
            sys1 = psutil.cpu_times()
            for v in viewers:
                v.close()
            window = w1 - w0
            samples = [(b[1] - a[1]) / window for a, b in zip(counts0, counts1, strict=True)]
            messages = [(b[0] - a[0]) / window for a, b in zip(counts0, counts1, strict=True)]
            rows.append(
                [
                    f"memdash server (1 process, {args.viewers} viewers)",
                    f"{c1 - c0:.2f}",
                    f"{100 * (c1 - c0) / window:.1f}",
                    f"{min(samples):.1f} / {sum(samples) / len(samples):.1f} "
                    f"(expected {len(pids) / args.interval:.0f})",
                ]
            )
            load.append(
                f"{'memdash+psrecord' if rec else 'memdash'} window: machine busy "
                f"{100 * machine_busy(sys0, sys1) / window:.0f}% of one core "
                f"(of {os.cpu_count() * 100}%); "
                f"this process (the {args.viewers} viewers) {100 * (m1 - m0) / window:.0f}%; "
                f"{sum(messages) / len(messages):.1f} Socket.IO 'samples' messages "
                "per viewer per second"
            )
            if rec is not None:
                rows.append(psrecord_row(rec, r1 - r0, window, w0, w1, args))
                rec.kill()
        if args.sequential:
            rows.append(run_psrecord_only())

    detail_every = 1 if args.draw in ("uss", "pss", "swap", "anon") else 10
    print(
        f"- load: {args.pids} {'busy' if args.busy else 'idle'} Python children watched at "
        f"interval {args.interval} s by "
        f"memdash (viewers draw {args.draw}: detail read every {detail_every} s) and by "
        f"{args.pids} psrecord processes; "
        f"{args.seconds:.0f} s window after {args.warmup:.0f} s warm-up; "
        f"{'sequential' if args.sequential else 'memdash and psrecord at the same time'}\n"
    )
    print_table(
        [
            "recorder",
            "CPU s in window",
            "% of one core",
            "samples/s delivered per viewer (min / mean)",
        ],
        rows,
    )
    for line in load:
        note(line)
    shutil.rmtree(logdir, ignore_errors=True)


def machine_busy(a, b) -> float:
    """CPU seconds all cores spent not idle between two psutil.cpu_times() snapshots."""
    idle = (b.idle - a.idle) + (getattr(b, "iowait", 0) - getattr(a, "iowait", 0))
    return sum(b) - sum(a) - idle


def measure_psrecord(rec: Psrecords, args) -> list:
    r0, w0 = rec.cpu(), time.monotonic()
    time.sleep(args.seconds)
    r1, w1 = rec.cpu(), time.monotonic()
    return psrecord_row(rec, r1 - r0, w1 - w0, w0, w1, args)


def psrecord_row(rec: Psrecords, used: float, window: float, w0, w1, args) -> list:
    total = rec.wait()
    lines = rec.lines_between(w0 - rec.started, w1 - rec.started)
    per_pid = lines / window / len(rec.procs)
    return [
        f"psrecord ({len(rec.procs)} processes, summed)",
        f"{used:.2f}",
        f"{100 * used / window:.1f}",
        f"n/a: logs {per_pid:.1f} samples/s per PID (asked {1 / args.interval:.0f}); "
        f"whole life incl. start-up {total:.1f} CPU s",
    ]


if __name__ == "__main__":
    main()
