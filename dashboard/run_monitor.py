"""Watching over leak-lab runs (the other half of :class:`dashboard.workers.WorkerPool`):
room for another run (how many at once, the memory budget of all runs), the monitor that caps
a run by memory or time from the sampler's figures, stopping runs, and how a run ended, said
once to every viewer (a ``run`` event and a ``mark``).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from . import errors, procs
from .runs import MARK_KINDS, MiB, Run
from .sampler import Sampler

log = logging.getLogger(__name__)

_MONITOR_INTERVAL = 0.25


class RunMonitor:
    """Caps and ends runs. The pool provides ``runs``, ``max_runs``, ``memory_budget``,
    ``sampler``, ``emit``, ``get``, ``list``, ``_growth``, ``_lock`` and ``_stop``."""

    runs: dict[str, Run]
    max_runs: int
    memory_budget: int
    sampler: Sampler
    emit: Callable
    _lock: threading.RLock
    _stop: threading.Event

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
