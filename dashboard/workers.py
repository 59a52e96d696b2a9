"""Starting leak-lab scenario runs (capping and stopping them: dashboard/run_monitor.py).

Safety rules this module keeps, so a demo never takes a workshop laptop down:
- every worker is started by :mod:`dashboard.procs` from one long-lived spawner thread: its
  own process group, killed by the kernel if memdash dies, and it reads a pipe from memdash
  on stdin, so it also sees EOF;
- caps per run (memory, time) are enforced by the worker itself and by this module's monitor,
  which reads the sampler's figures for the run's process tree (the sampler reads them ten
  times a second anyway); all runs together stay under a fraction of system RAM;
- only processes started here are ever signalled.

A run lists its processes (the worker, the worker's own children, its redis-server) with the
growth the estimator gives each; the tools (leak report, heap snapshot) act on the one that
grows most unless told which, mark the chart (a `mark` event) and ask the estimator to ignore
the seconds they disturb (``quiet``). How runs end is said in words (a `mark` too).
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from . import errors, procs, scenarios
from .run_monitor import RunMonitor
from .runs import Run
from .sampler import Emit, Sampler
from .tools import RunTools

log = logging.getLogger(__name__)


class WorkerPool(RunMonitor, RunTools):
    """All scenario runs of one server: start (here), watch over and stop (RunMonitor); and
    the tools (RunTools)."""

    def __init__(
        self,
        sampler: Sampler,
        emit: Emit | None = None,
        max_runs: int = 8,
        memory_fraction: float = 0.25,
        python: str = sys.executable,
    ):
        self.sampler = sampler
        self.emit = emit or (lambda event, payload, to: None)
        self.max_runs = max_runs
        self.memory_budget = int(psutil.virtual_memory().total * memory_fraction)
        self.python = python
        self.runs: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memdash-spawner")
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.snapshot_dir = Path(tempfile.mkdtemp(prefix="memdash-snapshots-"))
        self._temporary_snapshots = True  # until keep_snapshots() names a lasting place
        # Hooks the server connects to the growth estimator (the defaults know nothing):
        # growth_of(pid, children) -> {"bytes_per_min", "verdict", "window_s"} or None;
        # quiet(pids, start, end): ignore that span of these processes' series (and of the
        # process trees rooted at them), as a tool action disturbs it.
        self.growth_of: Callable[[int, bool], dict | None] = lambda pid, children: None
        self.quiet: Callable[[list[int], float, float], None] = lambda pids, start, end: None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the run monitor, and the sampler it reads (both only once)."""
        self.sampler.start()
        with self._lock:
            if self._monitor is None:
                self._monitor = threading.Thread(
                    target=self._watch_runs, name="memdash-runs", daemon=True
                )
                self._monitor.start()

    def close(self) -> None:
        self._stop.set()
        self._spawner.shutdown(wait=True)
        if self._temporary_snapshots:
            shutil.rmtree(self.snapshot_dir, ignore_errors=True)

    def keep_snapshots(self, directory: Path) -> None:
        """Write heap snapshots to ``directory`` (a recording's artefacts) and never delete
        them on exit."""
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)
        self.snapshot_dir, self._temporary_snapshots = Path(directory), False

    # -- starting ----------------------------------------------------------------------------

    def start_run(self, scenario_id: str, variant: str, runtime: str, raw_params: dict) -> Run:
        """Validate, then start one run; raises memdash errors for bad input or limits."""
        scenario, params = self._validate(scenario_id, variant, runtime, raw_params)
        self._check_room(1, params)
        return self._spawn(scenario, variant, runtime, params)

    def compare(self, scenario_id: str, runtime: str, raw_params: dict) -> list[Run]:
        """Start the leaky and the fixed variant together, same parameters."""
        scenario, params = self._validate(scenario_id, "leaky", runtime, raw_params)
        self._check_room(2, params)
        t0 = time.time()  # one t=0 for both, so the chart can align them
        leaky = self._spawn(scenario, "leaky", runtime, params, t0)
        try:
            fixed = self._spawn(scenario, "fixed", runtime, params, t0)
        except errors.MemdashError:
            self.stop(leaky.run_id)
            raise
        return [leaky, fixed]

    def _validate(self, scenario_id, variant, runtime, raw_params):
        scenario = scenarios.SCENARIOS.get(scenario_id) if isinstance(scenario_id, str) else None
        if scenario is None:
            raise errors.UnknownScenario(f"no scenario {scenario_id!r}")
        if variant not in ("leaky", "fixed"):
            raise errors.BadRequest(f"variant must be 'leaky' or 'fixed', got {variant!r}")
        if runtime not in scenario.runtimes:
            raise errors.BadRequest(
                f"runtime must be one of {', '.join(scenario.runtimes)}, got {runtime!r}"
            )
        if runtime == "node":
            status = scenarios.node_status()
            if not status["available"]:
                raise errors.Unavailable(f"Node scenarios are unavailable: {status['reason']}")
        if raw_params is None:
            raw_params = {}
        if not isinstance(raw_params, dict):
            raise errors.BadRequest("params must be an object")
        internal = [p.name for p in scenario.params if p.hidden and p.name in raw_params]
        if internal:
            raise errors.BadRequest(f"{internal[0]} is set by memdash, not by a client")
        try:
            params = scenarios.validate_params(scenario, raw_params)
        except ValueError as e:
            raise errors.BadParams(str(e)) from None
        return scenario, params

    def _spawn(
        self, scenario, variant: str, runtime: str, params: dict, started_at: float | None = None
    ) -> Run:
        run_id = f"r{next(self._ids)}"
        services = []
        # The fixed shared-cache variant keeps its cache in a private Redis.
        if variant == "fixed" and any(p.name == "redis_port" for p in scenario.params):
            redis, port = self._spawner.submit(procs.start_redis).result()
            services.append(redis)
            params = {**params, "redis_port": port}
        argv = scenarios.command(scenario.id, runtime, variant, params, python=self.python)
        try:
            proc = self._spawner.submit(procs.popen, argv).result()
        except OSError as e:
            for service in services:
                procs.terminate(service)
            raise errors.Unavailable(f"could not start {argv[0]}: {e}") from e
        run = Run(
            run_id=run_id,
            scenario=scenario.id,
            variant=variant,
            runtime=runtime,
            params={k: v for k, v in params.items() if k != "redis_port"},
            proc=proc,
            started_at=started_at or time.time(),
            max_rss=params["max_rss_mb"] * 2**20,
            max_seconds=params["duration"],
            services=services,
        )
        with self._lock:
            self.runs[run_id] = run
        run.readers = [
            threading.Thread(target=self._read_stdout, args=(run,), daemon=True),
            threading.Thread(target=run.read_stderr, daemon=True),
        ]
        for reader in run.readers:
            reader.start()
        # The server records every run from its first sample; the monitor reads its caps there.
        # The worker alone too: its own growth, beside its workers' (shared_cache).
        keep = [(run.pid, True), (run.pid, False)] + [(s.pid, False) for s in services]
        for pid, children in keep:
            try:
                self.sampler.keep(pid, children, owner=f"run:{run_id}")
            except errors.MemdashError:
                pass  # died at once; the monitor reports it
        self.start()
        self._announce(run)
        return run

    # -- talking to a worker -----------------------------------------------------------------

    def _read_stdout(self, run: Run) -> None:
        for line in run.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a scenario's own print: not for us
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "heap":
                heap = {
                    k: message[k] for k in ("heap_used", "heap_total", "external") if k in message
                }
                self.sampler.add_extra(run.pid, heap)
            elif kind == "hello":
                if run.state == "starting":
                    run.state = "running"
                    self._announce(run)
            elif kind in ("capped", "done") and run.stop_requested is None:
                # (a run memdash is stopping keeps the reason it was stopped for)
                run.reason = message.get("reason") if kind == "capped" else run.time_cap()
            elif kind in ("leak_report", "heap_snapshot", "error"):
                run.replies.put(message)

    # -- the runs ----------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        with self._lock:
            run = self.runs.get(run_id) if isinstance(run_id, str) else None
        if run is None:
            raise errors.UnknownRun(f"no run {run_id!r}")
        return run

    def list(self) -> list[Run]:
        with self._lock:
            return list(self.runs.values())

    def clear_finished(self) -> list[str]:
        """Forget the runs that have ended; their ids. Their heap snapshots go too, unless the
        session is recorded (then they are the session's artefacts, kept with it)."""
        with self._lock:
            gone = [run for run in self.runs.values() if not run.alive]
            for run in gone:
                del self.runs[run.run_id]
        for run in gone:
            for path in run.snapshots if self._temporary_snapshots else ():
                path.unlink(missing_ok=True)
        cleared = [run.run_id for run in gone]
        if cleared:
            self.emit("runs_cleared", {"run_ids": cleared}, None)
        return cleared
