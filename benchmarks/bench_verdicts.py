"""Leak lab: the growth verdict timeline of every run, as the server's estimator reads it.

Each scenario x runtime starts as Compare starts it: its leaky and its fixed variant together,
the argv from ``scenarios.command()`` with default params, stdin a pipe kept open, cwd the repo
root; shared_cache fixed gets a private redis-server started with memdash's own flags. Every
series memdash watches for a run is read from /proc/PID/statm 10 times a second and fed to
its own :class:`dashboard.growth.GrowthEstimator` as it comes (``add``), and asked once a
second (``estimate``), as the server does: the run's process tree (parent + workers, summed,
with the frozenset of member pids) and the redis-server helper. A series ends after
``--seconds`` or when the process exits (leaky runs that reach their cap or crash).

Targets (issue 9): every leaky run reads ``growing`` within 15 s of its start and stays so until
it ends; every fixed run and every helper never reads ``growing`` in its first 60 s and reads
``stable`` by 20 s. The table shows, per series: when it first read growing, whether it left
growing afterwards (leaky), whether it ever read growing (fixed, helper), and when it first
read stable.

``--action-at S`` runs a tool action on each fixed run at S s (Node: heap snapshot; Python: a
2 s leak report) and marks the seconds it takes as quiet, to see that its RSS jump is no growth.
``--record DIR`` saves each series at 2 Hz as JSON (the format tests/test_growth.py replays).

    .venv/bin/python benchmarks/bench_verdicts.py [--seconds 60] [--scenario ID ...]
        [--runtime python|node ...] [--jobs 1] [--action-at S] [--record DIR] [--replay DIR]

``--replay DIR`` starts nothing: it feeds recorded series (e.g. tests/data/growth) to the
estimator again and prints the same table, in a second, and what an estimate costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from _common import MiB, header, note, print_table, progress

from dashboard import scenarios
from dashboard.growth import GrowthEstimator
from dashboard.procs import popen, start_redis

HZ = 10
RECORD_HZ = 2
ESTIMATE_CPU: list[float] = []  # CPU seconds of each estimate() call (the server's once a second)


@dataclass
class Series:
    """One watched series: what was read, and what the estimator said once a second."""

    scenario: str
    runtime: str
    variant: str
    role: str  # "main" (the run's process tree) or "redis"
    pid: int
    tree: bool
    t0: float
    samples: list = field(default_factory=list)  # (t, rss, members)
    quiet: list = field(default_factory=list)  # (start, end)
    verdicts: list = field(default_factory=list)  # (t, Growth)
    end: str = "running"
    next_estimate: float = 1.0
    tag: str = ""  # of a replayed file: "-action", "-run2"

    def __post_init__(self) -> None:
        # a run's helper (redis) is watched as the server watches it: GrowthEstimator(helper=True)
        self.estimator = GrowthEstimator(helper=self.role != "main")

    @property
    def name(self) -> str:
        role = "" if self.role == "main" else f" · {self.role}"
        return f"{self.scenario} · {self.runtime} · {self.variant}{role}{self.tag}"

    def feed(self, t: float, value: int, members: object) -> None:
        """One sample to the estimator, as the sampler will give it; ask once a second."""
        self.samples.append((t, value, members))
        self.estimator.add(t, value, members)
        while t >= self.next_estimate:
            began = time.process_time()
            growth = self.estimator.estimate(self.next_estimate)
            ESTIMATE_CPU.append(time.process_time() - began)
            self.verdicts.append((self.next_estimate, growth))
            self.next_estimate += 1.0

    def read(self, now: float) -> bool:
        """One fast sample; False once the process is gone."""
        pids = [self.pid]
        if self.tree:
            try:
                pids += [c.pid for c in psutil.Process(self.pid).children(recursive=True)]
            except psutil.Error:
                return False
        total, members = 0, []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/statm", "rb") as f:
                    total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                members.append(pid)
            except (OSError, ValueError, IndexError):
                if pid == self.pid:
                    return False
        if total == 0:  # a zombie: exited, not yet reaped
            return False
        self.feed(now - self.t0, total, frozenset(members))
        return True

    def to_json(self) -> dict:
        """2 Hz (the first sample of each half second), RSS in KiB, membership changes."""
        rows, changes, last_slot, last_members = [], [], None, None
        for t, value, members in self.samples:
            if members != last_members:
                changes.append([round(t, 2), len(members)])
                last_members = members
            slot = int(t * RECORD_HZ)
            if slot != last_slot:
                rows.append([round(t, 2), value // 1024])
                last_slot = slot
        return {
            "scenario": self.scenario,
            "runtime": self.runtime,
            "variant": self.variant,
            "role": self.role,
            "end": self.end,
            "samples": rows,
            "members": changes,
            "quiet": [[round(a, 2), round(b, 2)] for a, b in self.quiet],
        }


def replay(path: Path) -> Series:
    """A recorded series (``--record``) fed again: the estimator only ever sees (t, value)."""
    data = json.loads(path.read_text())
    s = Series(data["scenario"], data["runtime"], data["variant"], data["role"], 0, False, 0.0)
    s.end = data["end"]
    s.tag = path.stem.replace(f"{s.scenario}-{s.runtime}-{s.variant}", "").replace("-redis", "")
    s.tag = s.tag.replace("-", " · ")
    pending = [tuple(q) for q in data["quiet"]]
    changes = [c[0] for c in data["members"]]
    for t, kib in data["samples"]:
        for start, end in [q for q in pending if t > q[1]]:
            s.quiet.append((start, end))
            s.estimator.quiet(start, end)  # marked once the action has ended, as the server does
            pending.remove((start, end))
        s.feed(t, kib * 1024, sum(1 for c in changes if c <= t))
    return s


def _stop(proc: subprocess.Popen) -> None:
    """Close stdin (the worker exits), then the group of the process we started, then reap."""
    if proc.stdin:
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    if proc.returncode is None:  # not reaped: its group id is still ours
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _replies(proc: subprocess.Popen, box: list) -> None:
    for line in proc.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("type") in ("heap_snapshot", "leak_report"):
            box.append(message)


def _action(series: Series, proc: subprocess.Popen, box: list, tmp: str) -> None:
    """A tool action on a run, its seconds marked quiet as the server will mark them."""
    start = time.time() - series.t0
    if series.runtime == "node":
        command = {"cmd": "heap_snapshot", "path": f"{tmp}/{series.pid}.heapsnapshot"}
    else:
        command = {"cmd": "leak_report", "seconds": 2}
    proc.stdin.write(json.dumps(command) + "\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not box and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    end = time.time() - series.t0 + 1.0  # the process settles a moment after replying
    series.quiet.append((start, end))
    series.estimator.quiet(start, end)


def run_pair(scenario_id: str, runtime: str, seconds: float, action_at: float | None) -> list:
    """Leaky and fixed together, as Compare starts them; every series sampled at 10 Hz."""
    procs, series, redis = {}, [], None
    tmp = tempfile.mkdtemp(prefix="bench-verdicts-")
    try:
        t0 = time.time()
        for variant in scenarios.VARIANTS:
            params = {}
            if variant == "fixed" and scenario_id == "shared_cache":
                # memdash's own spawning (procs): a pool thread lives until every job has ended
                redis, port = start_redis()
                params["redis_port"] = port
            argv = scenarios.command(scenario_id, runtime, variant, params, python=sys.executable)
            proc = popen(argv, stderr=subprocess.DEVNULL)
            procs[variant] = proc
            series.append(Series(scenario_id, runtime, variant, "main", proc.pid, True, t0))
            if variant == "fixed" and redis is not None:
                series.append(Series(scenario_id, runtime, variant, "redis", redis.pid, False, t0))
        boxes = {v: [] for v in procs}
        for variant, proc in procs.items():
            threading.Thread(target=_replies, args=(proc, boxes[variant]), daemon=True).start()
        acted = action_at is None
        live = list(series)
        tick = time.monotonic()
        while live:
            now = time.time()
            for s in list(live):
                proc = procs[s.variant] if s.role == "main" else redis
                if now - t0 > seconds:
                    s.end = "stopped"
                    live.remove(s)
                elif proc.poll() is not None or not s.read(now):
                    s.end = f"exited ({proc.wait()})"
                    live.remove(s)
            if not acted and time.time() - t0 >= action_at:
                acted = True
                fixed = next(s for s in series if s.variant == "fixed" and s.role == "main")
                threading.Thread(
                    target=_action, args=(fixed, procs["fixed"], boxes["fixed"], tmp), daemon=True
                ).start()
            tick += 1 / HZ
            time.sleep(max(0.0, tick - time.monotonic()))
    finally:
        for proc in procs.values():
            _stop(proc)
        if redis is not None:
            redis.terminate()
            redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return series


def summarize(s: Series) -> list:
    """One table row: first growing, whether it left growing, first stable, the last rate."""
    first_growing = next((t for t, g in s.verdicts if g.verdict == "growing"), None)
    first_stable = next((t for t, g in s.verdicts if g.verdict == "stable"), None)
    grew_60 = any(g.verdict == "growing" for t, g in s.verdicts if t <= 60)
    left = first_growing is not None and any(
        g.verdict != "growing" for t, g in s.verdicts if t > first_growing
    )
    duration = s.samples[-1][0] if s.samples else 0.0
    last = s.verdicts[-1][1] if s.verdicts else None
    if s.variant == "leaky" and s.role == "main":
        ok = first_growing is not None and first_growing <= 15 and not left
    else:
        ok = not grew_60 and first_stable is not None and first_stable <= 20
    return [
        s.name,
        f"{duration:.0f} s, {s.end}",
        "-" if first_growing is None else f"{first_growing:.0f} s",
        "yes" if left else "no",
        "-" if s.variant == "leaky" and s.role == "main" else ("yes" if grew_60 else "no"),
        "-" if first_stable is None else f"{first_stable:.0f} s",
        "-" if last is None else f"{last.verdict} {last.bytes_per_min / MiB:+.1f}",
        "ok" if ok else "MISSED",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="per run (default 60)")
    parser.add_argument("--scenario", action="append", choices=sorted(scenarios.SCENARIOS))
    parser.add_argument("--runtime", action="append", choices=scenarios.RUNTIMES)
    parser.add_argument("--jobs", type=int, default=1, help="pairs at a time (default 1)")
    parser.add_argument("--action-at", type=float, help="tool action on fixed runs at S s")
    parser.add_argument("--record", type=Path, help="save every series as JSON in this dir")
    parser.add_argument("--replay", type=Path, help="start nothing: replay the JSON in this dir")
    args = parser.parse_args()
    if args.replay:
        header("Growth verdicts of recorded leak-lab runs (replayed)")
        results = [replay(p) for p in sorted(args.replay.glob("*.json"))]
        report(results, RECORD_HZ)
        return 0
    ids = args.scenario or list(scenarios.SCENARIOS)
    runtimes = args.runtime or list(scenarios.RUNTIMES)
    if "node" in runtimes and not scenarios.node_status()["available"]:
        progress(f"skipping node: {scenarios.node_status()['reason']}")
        runtimes = [r for r in runtimes if r != "node"]
    header("Growth verdicts of the leak lab's runs")
    jobs = [(i, r) for i in ids for r in runtimes]

    def one(job):
        progress(f"{job[0]} · {job[1]}: leaky + fixed for up to {args.seconds:g} s")
        return run_pair(*job, args.seconds, args.action_at)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = [s for pair in pool.map(one, jobs) for s in pair]
    if args.record:
        args.record.mkdir(parents=True, exist_ok=True)
        for s in results:
            name = f"{s.scenario}-{s.runtime}-{s.variant}" + ("" if s.role == "main" else "-redis")
            name += "" if args.action_at is None else "-action"
            (args.record / f"{name}.json").write_text(
                json.dumps(s.to_json(), separators=(",", ":"))
            )
    report(results)
    return 0


def report(results: list, hz: float = HZ) -> None:
    """The verdict timeline table, and how many series missed their target."""
    print_table(
        [
            "series",
            "ran",
            "first growing",
            "left growing",
            "growing ≤ 60 s",
            "first stable",
            "last (MiB/min)",
            "target",
        ],
        [summarize(s) for s in results],
    )
    missed = sum(1 for s in results if summarize(s)[-1] != "ok")
    note(
        f"{len(results)} series, {missed} missed the target. Targets: leaky reads growing "
        f"within 15 s and stays so until it ends; fixed runs and helpers never read growing "
        f"within 60 s and read stable by 20 s. One estimator per series, fed at {hz:g} Hz, "
        f"asked once a second (dashboard/growth.py)."
    )
    if ESTIMATE_CPU:
        each = sum(ESTIMATE_CPU) / len(ESTIMATE_CPU)
        note(
            f"estimate() cost {1e6 * each:.0f} µs of CPU on average over {len(ESTIMATE_CPU)} "
            f"calls: {20e3 * each:.1f} ms a second for 20 watched series (the server asks each "
            "series once a second; its cost follows the 1 s medians, not the feeding rate)."
        )


if __name__ == "__main__":
    sys.exit(main())
