"""Leak lab: how fast each scenario's leaky and fixed variant grows, Python and Node.

Every scenario x runtime x variant runs directly (the argv from ``scenarios.command()``, default
params, stdin a pipe kept open so the worker runs until we close it) for ``--seconds``. Its RSS
is read from /proc/PID/statm 4 times a second, summed over the process tree for shared_cache
(the parent and its workers). A least-squares line over the last 2/3 of the run gives the growth
in MiB/min. heap_limit's leaky variant is left to run into its limit (up to its own 120 s
duration) and reported as "crashes after N s" instead of a growth rate.

shared_cache fixed gets its own private redis-server on a free loopback port (``--save ''
--appendonly no --maxmemory 64mb --maxmemory-policy allkeys-lru``), as memdash starts one; its
RSS is not part of the tree, so its growth is shown in a note.

Heap reporting overhead: module_accumulator fixed, Python and Node, with and without
``no_heap=True`` (Python: no tracemalloc; Node: no ``process.memoryUsage()`` line), all four at
the same time: CPU time of the worker per second of run (after the first 2 s, i.e. without
start-up) and mean RSS over the last 2/3.

Runs ``--jobs`` (default 4) workers at a time on this 2-core machine; the scenarios are paced
by wall clock and use a few % of a core each, so this does not slow their leaks (the "CPU"
column of the overhead table shows how little they use).

    .venv/bin/python benchmarks/bench_scenarios.py [--seconds 20] [--quick] [--jobs 4]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psutil
from _common import (
    ROOT,
    MiB,
    cpu_seconds,
    header,
    note,
    print_table,
    progress,
    rss,
    slope,
)

from dashboard import scenarios
from dashboard.testing import free_port

SAMPLE_EVERY = 0.25
CRASH_LIMIT_S = 120  # heap_limit leaky: its own default duration


@dataclass
class Job:
    scenario: str
    runtime: str
    variant: str
    seconds: float
    no_heap: bool = False
    points: list = field(default_factory=list)  # (t, tree rss)
    cpu: list = field(default_factory=list)  # (t, cpu seconds of the tree)
    redis_points: list = field(default_factory=list)
    exit_code: int | None = None
    exit_after: float | None = None
    stderr_tail: str = ""
    error: str = ""
    capped: str = ""

    @property
    def crash_test(self) -> bool:
        return self.scenario == "heap_limit" and self.variant == "leaky"

    @property
    def name(self) -> str:
        extra = " no_heap" if self.no_heap else ""
        return f"{self.scenario}/{self.runtime}/{self.variant}{extra}"


def start_redis() -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited at start ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def tree(root: psutil.Process, with_children: bool) -> list[int]:
    pids = [root.pid]
    if with_children:
        try:
            pids += [c.pid for c in root.children(recursive=True)]
        except psutil.Error:
            pass
    return pids


def run_job(job: Job) -> Job:
    redis = None
    proc = None
    stderr = tempfile.TemporaryFile()
    try:
        params = {"duration": CRASH_LIMIT_S if job.crash_test else job.seconds + 30}
        if job.scenario == "shared_cache" and job.variant == "fixed":
            redis, port = start_redis()
            params["redis_port"] = port
        argv = scenarios.command(
            job.scenario,
            job.runtime,
            job.variant,
            params,
            python=sys.executable,
            no_heap=job.no_heap,
        )
        limit = CRASH_LIMIT_S + 5 if job.crash_test else job.seconds
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        hello = threading.Event()
        threading.Thread(target=read_stdout, args=(proc, hello, job), daemon=True).start()
        root = psutil.Process(proc.pid)
        many = job.scenario == "shared_cache"
        # The clock starts at the worker's hello line (start-up done: imports, argv parsed).
        if not hello.wait(60):
            raise RuntimeError("no hello line within 60 s")
        start = time.monotonic()
        n = 0
        while True:
            t = time.monotonic() - start
            if proc.poll() is not None:
                job.exit_code, job.exit_after = proc.returncode, t
                break
            if t >= limit:
                break
            total = cpu = 0
            for pid in tree(root, many):
                try:
                    total += rss(pid)
                    cpu += cpu_seconds(pid)
                except (OSError, ValueError, IndexError):
                    pass  # exited between listing and reading
            job.points.append((t, total))
            job.cpu.append((t, cpu))
            if redis is not None:
                job.redis_points.append((t, rss(redis.pid)))
            n += 1
            time.sleep(max(0.0, start + n * SAMPLE_EVERY - time.monotonic()))
    except Exception as e:  # reported in the table, the other jobs go on
        job.error = repr(e)
    finally:
        if proc is not None and proc.poll() is None:
            proc.stdin.close()  # EOF: the worker exits at once (shared_cache workers follow)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                for pid in reversed(tree(psutil.Process(proc.pid), True)):
                    try:
                        psutil.Process(pid).kill()
                    except psutil.Error:
                        pass
                proc.wait()
        elif proc is not None:
            proc.stdin.close()
        if redis is not None:
            redis.kill()
            redis.wait()
        stderr.seek(0)
        lines = stderr.read().decode(errors="replace").strip().splitlines()
        oom = [ln for ln in lines if "out of memory" in ln]  # V8's "heap out of memory"
        errs = [ln for ln in lines if ln.startswith(("MemoryError", "Error", "FATAL"))]
        job.stderr_tail = (oom or errs or lines or [""])[-1].strip()
        stderr.close()
    progress(f"done {job.name}" + (f" (exit {job.exit_code})" if job.exit_code else ""))
    return job


def read_stdout(proc: subprocess.Popen, hello: threading.Event, job: Job) -> None:
    """Drain the worker's JSON lines (a full pipe would block it); note hello and capped."""
    for line in proc.stdout:
        if b'"hello"' in line:
            hello.set()
        elif b'"capped"' in line:
            job.capped = line.decode(errors="replace").strip()
    hello.set()  # exited before saying hello: don't wait for it


def growth(points: list, seconds: float) -> float:
    """MiB/min of a least-squares line over the last 2/3 of the run."""
    tail = [(t, r) for t, r in points if t >= seconds / 3]
    return slope(tail) * 60 / MiB


def mean_tail(points: list, seconds: float) -> float:
    tail = [r for t, r in points if t >= seconds / 3]
    return sum(tail) / len(tail) if tail else float("nan")


def cpu_rate(job: Job) -> float:
    pts = [(t, c) for t, c in job.cpu if t >= 2]
    if len(pts) < 2:
        return float("nan")
    return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=20, help="seconds per run (default 20)")
    p.add_argument("--quick", action="store_true", help="8 s runs, Python only, no crash test")
    p.add_argument("--jobs", type=int, default=4, help="runs at a time (default 4)")
    args = p.parse_args()
    if args.quick:
        args.seconds = 8
    header("memdash leak lab: growth of each scenario, leaky vs fixed")
    node = scenarios.node_status()
    runtimes = ["python"] + (["node"] if node["available"] and not args.quick else [])
    redis_ok = shutil.which("redis-server") is not None

    overhead = [
        Job("module_accumulator", rt, "fixed", args.seconds, no_heap=nh)
        for rt in runtimes
        for nh in (False, True)
    ]
    crash, rest = [], []
    for sid, sc in scenarios.SCENARIOS.items():
        for rt in runtimes:
            if rt not in sc.runtimes:
                continue
            for variant in scenarios.VARIANTS:
                if sid == "shared_cache" and variant == "fixed" and not redis_ok:
                    continue
                if sid == "module_accumulator" and variant == "fixed":
                    continue  # the overhead run with heap reporting is this run
                job = Job(sid, rt, variant, args.seconds)
                if job.crash_test and args.quick:
                    continue
                (crash if job.crash_test else rest).append(job)
    jobs = overhead + crash + rest  # the four overhead runs together; long crash runs early
    progress(f"{len(jobs)} runs, {args.jobs} at a time, {args.seconds:.0f} s each")
    wall = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(run_job, jobs))
    wall = time.monotonic() - wall

    def cell(job: Job | None) -> tuple[str, str]:
        if job is None:
            return "skipped", ""
        if job.error:
            return f"error: {job.error}", ""
        end = f"{job.points[-1][1] / MiB:.0f}" if job.points else "?"
        if job.crash_test:
            if job.exit_code not in (None, 0, 3):
                return f"crashes after {job.exit_after:.0f} s (exit {job.exit_code})", end
            if job.exit_code is None:
                return f"no crash within {CRASH_LIMIT_S} s", end
            return f"exit {job.exit_code} after {job.exit_after:.0f} s", end
        text = f"{growth(job.points, args.seconds):+.1f}"
        if job.exit_code is not None:
            text += f" (exit {job.exit_code} at {job.exit_after:.0f} s)"
        return text, end

    found = {(j.scenario, j.runtime, j.variant): j for j in crash + rest}
    for j in overhead:
        if not j.no_heap:
            found[(j.scenario, j.runtime, j.variant)] = j
    rows = []
    for sid in scenarios.SCENARIOS:
        for rt in runtimes:
            leaky, leaky_end = cell(found.get((sid, rt, "leaky")))
            fixed, fixed_end = cell(found.get((sid, rt, "fixed")))
            rows.append([sid, rt, leaky, fixed, leaky_end, fixed_end])
    print(
        f"- {len(jobs)} runs of {args.seconds:.0f} s (heap_limit leaky: until it dies), "
        f"{args.jobs} at a time, default params; wall time {wall:.0f} s; "
        f"node {node['version'] or 'unavailable'}; growth = least-squares slope of RSS over "
        f"the last 2/3 of the run\n"
    )
    print_table(
        [
            "scenario",
            "runtime",
            "leaky MiB/min",
            "fixed MiB/min",
            "leaky RSS at end (MiB)",
            "fixed RSS at end (MiB)",
        ],
        rows,
    )
    notes = []
    for job in crash + rest:
        if job.crash_test and job.stderr_tail:
            notes.append(f"{job.name} stderr: {job.stderr_tail[:160]}")
        if job.redis_points:
            g = growth(job.redis_points, args.seconds)
            notes.append(
                f"{job.name}: its redis-server grew {g:+.1f} MiB/min "
                f"(RSS {job.redis_points[-1][1] / MiB:.1f} MiB at the end), not in the table"
            )
        if job.capped:
            notes.append(f"{job.name}: {job.capped}")
        if job.exit_code is not None and not job.crash_test:
            notes.append(f"{job.name} exited early ({job.exit_code}): {job.stderr_tail[:160]}")
    if notes:
        print("\n".join("- " + line for line in notes) + "\n", flush=True)

    print("### Heap reporting overhead (module_accumulator fixed, the 4 runs at the same time)\n")
    orows = []
    for rt in runtimes:
        on = next(j for j in overhead if j.runtime == rt and not j.no_heap)
        off = next(j for j in overhead if j.runtime == rt and j.no_heap)
        if on.error or off.error:
            orows.append([rt, on.error or off.error, "", "", "", ""])
            continue
        con, coff = cpu_rate(on), cpu_rate(off)
        ron, roff = mean_tail(on.points, args.seconds), mean_tail(off.points, args.seconds)
        orows.append(
            [
                rt,
                f"{1000 * con:.1f}",
                f"{1000 * coff:.1f}",
                f"{100 * (con - coff) / coff:+.0f}%" if coff > 0 else "n/a",
                f"{ron / MiB:.1f} / {roff / MiB:.1f}",
                f"{(ron - roff) / MiB:+.1f}",
            ]
        )
    print_table(
        [
            "runtime",
            "CPU ms/s with heap",
            "CPU ms/s no_heap",
            "CPU overhead",
            "mean RSS MiB with / without",
            "RSS difference MiB",
        ],
        orows,
    )
    note(
        "CPU ms/s = CPU time (user+sys) of the worker per second of wall time, after the first "
        "2 s. Python's heap reporting is tracemalloc (every allocation traced, 1 frame); Node's "
        "is one process.memoryUsage() a second."
    )


if __name__ == "__main__":
    main()
