"""Starting, capping and stopping leak-lab scenario runs.

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
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from . import errors, procs, scenarios
from .runs import MARK_KINDS, MiB, Run
from .sampler import Emit, Sampler
from .tools import RunTools

log = logging.getLogger(__name__)

_MONITOR_INTERVAL = 0.25


class WorkerPool(RunTools):
    """All scenario runs of one server: start, watch over, stop; and the tools (RunTools)."""

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

    def _check_room(self, count: int, params: dict) -> None:
        with self._lock:
            alive = [r for r in self.runs.values() if r.alive]
        if len(alive) + count > self.max_runs:
            raise errors.TooManyRuns(f"at most {self.max_runs} runs at once; stop one first")
        committed = sum(r.max_rss for r in alive) + count * params["max_rss_mb"] * 2**20
        if committed > self.memory_budget:
            raise errors.TooManyRuns(
                f"the runs' memory caps would exceed memdash's budget of "
                f"{self.memory_budget // 2**20} MiB; stop a run or lower max_rss_mb"
            )

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

    # -- stopping ----------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        with self._lock:
            run = self.runs.get(run_id) if isinstance(run_id, str) else None
        if run is None:
            raise errors.UnknownRun(f"no run {run_id!r}")
        return run

    def list(self) -> list[Run]:
        with self._lock:
            return list(self.runs.values())

    def stop(self, run_id: str, state: str = "stopped", reason: str = "stopped by a viewer") -> Run:
        run = self.get(run_id)
        if not run.alive:
            raise errors.RunEnded(f"run {run_id} is already {run.state}")
        self._end(run, state, reason)
        return run

    def stop_all(self, reason: str = "stopped by a viewer") -> list[Run]:
        stopped = [r for r in self.list() if r.alive]
        for run in stopped:
            self._end(run, "stopped", reason)
        return stopped

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

    def _end(self, run: Run, state: str, reason: str) -> None:
        """Kill the run's process group and services, wait, report ``state``."""
        with self._lock:
            if not run.alive:
                return
            run.stop_requested = state
            run.reason = reason
        procs.terminate(run.proc)
        for service in run.services:
            procs.terminate(service)
        self._finish(run)

    def _finish(self, run: Run) -> None:
        """Record how a run ended (once), release its watches and services, tell viewers."""
        procs.signal_group(run.proc, signal.SIGKILL)  # children that outlived the worker
        code = run.proc.wait()
        # Its last words (a "capped" line, an out-of-memory message) before judging it: the
        # pipes close once the whole process group is gone.
        for reader in run.readers:
            if reader is not threading.current_thread():
                reader.join(timeout=2)
        with self._lock:
            if not run.alive:
                return
            run.ended_at = time.time()
            run.settle(code)
        for service in run.services:
            procs.terminate(service)
        run.close_stdin()
        self.sampler.release(f"run:{run.run_id}")
        self._announce(run)
        mark = {"t": run.ended_at, "kind": MARK_KINDS[run.state], "label": run.reason}
        self.emit("mark", {**mark, "run_id": run.run_id, "pid": run.pid}, None)

    def _announce(self, run: Run) -> None:
        run.announced = run.signature()
        self.emit("run", run.to_dict(), None)

    # -- the monitor -------------------------------------------------------------------------

    def _watch_runs(self) -> None:
        while not self._stop.wait(_MONITOR_INTERVAL):
            try:
                self._check_runs()
            except Exception:
                log.exception("run monitor failed")

    def _check_runs(self) -> None:
        now = time.time()
        alive = [r for r in self.list() if r.alive]
        for run in alive:
            if procs.has_exited(run.proc):
                self._finish(run)
                continue
            # The sampler reads the run's tree ten times a second: its latest figures, not
            # another walk over /proc. No sample yet (just started): nothing to cap yet.
            latest = self.sampler.latest(run.pid, children=True)
            if latest is not None:
                run.rss = latest["rss"]
            run.track(self.sampler, self._growth, now)
            if run.rss > run.max_rss:
                self._end(
                    run,
                    "capped",
                    f"memory cap {run.max_rss // MiB} MiB (rss {run.rss / MiB:.0f} MiB)",
                )
            elif now - run.started_at > run.max_seconds + 5:  # the worker's own cap failed
                self._end(run, "capped", run.time_cap())
            elif run.signature() != run.announced:  # a verdict or a process came or went
                self._announce(run)
        total = sum(r.rss for r in alive if r.alive)
        if total > self.memory_budget:
            biggest = max((r for r in alive if r.alive), key=lambda r: r.rss)
            self._end(
                biggest,
                "capped",
                f"all runs together passed memdash's budget of {self.memory_budget // 2**20} MiB",
            )
