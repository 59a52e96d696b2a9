"""Starting, capping and stopping leak-lab scenario processes.

Safety rules this module keeps, so a demo never takes a workshop laptop down:
- every worker runs in its own process group, started from one long-lived thread with the
  Linux parent-death signal set (the signal follows the *thread* that forked, hence one
  spawner thread), and reads a pipe from memdash on stdin: if the server dies, even by
  ``kill -9``, the worker is killed by the kernel and also sees EOF;
- caps per run (memory, time) are enforced by the worker itself and by this module's own
  measurements; all runs together stay under a fraction of system RAM;
- only processes started here are ever signalled.
"""

from __future__ import annotations

import collections
import ctypes
import itertools
import json
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

from . import errors, memory, scenarios

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_SELF_CAPPED_EXIT = 3  # exit code of a worker that stopped at its own memory cap
_MONITOR_INTERVAL = 0.25


def _die_with_parent(parent: int) -> Callable[[], None]:
    """preexec_fn: SIGKILL this child when the spawning thread's process dies."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Run:
    run_id: str
    scenario: str
    variant: str
    runtime: str
    params: dict
    proc: subprocess.Popen
    started_at: float
    max_rss: int
    max_seconds: float
    state: str = "starting"
    reason: str | None = None
    exit_code: int | None = None
    ended_at: float | None = None
    services: list[subprocess.Popen] = field(default_factory=list)
    stderr_tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200))
    replies: queue.Queue = field(default_factory=queue.Queue)
    stop_requested: str | None = None  # the state to report once it has exited
    rss: int = 0
    stdin_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.state in ("starting", "running")

    def to_dict(self) -> dict:
        out = {
            "run_id": self.run_id,
            "scenario": self.scenario,
            "variant": self.variant,
            "runtime": self.runtime,
            "pid": self.pid,
            "state": self.state,
            "started_at": self.started_at,
            "params": self.params,
            "rss": self.rss,
            "max_rss": self.max_rss,
            "max_seconds": self.max_seconds,
        }
        if self.services:
            out["extra_pids"] = [p.pid for p in self.services]
        if self.reason is not None:
            out["reason"] = self.reason
        if self.exit_code is not None:
            out["exit_code"] = self.exit_code
        if self.ended_at is not None:
            out["ended_at"] = self.ended_at
        return out


class WorkerPool:
    """All scenario runs of one server: start, watch over, stop."""

    def __init__(
        self,
        sampler=None,
        emit: Callable[[str, dict, str | None], None] | None = None,
        max_runs: int = 8,
        memory_fraction: float = 0.25,
        python: str = sys.executable,
    ):
        self.sampler = sampler
        self.emit = emit or (lambda event, payload, room: None)
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

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._monitor is None:
                self._monitor = threading.Thread(
                    target=self._watch_runs, name="memdash-runs", daemon=True
                )
                self._monitor.start()

    def close(self) -> None:
        self._stop.set()
        self._spawner.shutdown(wait=True)
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)

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
            raise errors.NotFound(f"no scenario {scenario_id!r}", code="unknown_scenario")
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
            raise errors.BadRequest(str(e), code="bad_params") from None
        return scenario, params

    def _check_room(self, count: int, params: dict) -> None:
        with self._lock:
            alive = [r for r in self.runs.values() if r.alive]
        if len(alive) + count > self.max_runs:
            raise errors.TooMany(
                f"at most {self.max_runs} runs at once; stop one first", code="too_many_runs"
            )
        committed = sum(r.max_rss for r in alive) + count * params["max_rss_mb"] * 2**20
        if committed > self.memory_budget:
            raise errors.TooMany(
                f"the runs' memory caps would exceed memdash's budget of "
                f"{self.memory_budget // 2**20} MiB; stop a run or lower max_rss_mb",
                code="too_many_runs",
            )

    def _spawn(
        self, scenario, variant: str, runtime: str, params: dict, started_at: float | None = None
    ) -> Run:
        run_id = f"r{next(self._ids)}"
        services = []
        # The fixed shared-cache variant keeps its cache in a private Redis.
        if variant == "fixed" and any(p.name == "redis_port" for p in scenario.params):
            redis, port = self._spawner.submit(_start_redis).result()
            services.append(redis)
            params = {**params, "redis_port": port}
        argv = scenarios.command(scenario.id, runtime, variant, params, python=self.python)
        try:
            proc = self._spawner.submit(_popen, argv).result()
        except OSError as e:
            for service in services:
                _terminate(service)
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
        threading.Thread(target=self._read_stdout, args=(run,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(run,), daemon=True).start()
        if self.sampler is not None:  # the server records every run from its first sample
            for pid, children in [(run.pid, True)] + [(s.pid, False) for s in services]:
                try:
                    self.sampler.watch(pid, children, viewer=f"run:{run_id}")
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
            if kind == "heap" and self.sampler is not None:
                heap = {
                    k: message[k] for k in ("heap_used", "heap_total", "external") if k in message
                }
                self.sampler.add_extra(run.pid, heap)
            elif kind == "hello":
                if run.state == "starting":
                    run.state = "running"
                    self._announce(run)
            elif kind in ("capped", "done"):
                run.reason = message.get("reason")
            elif kind in ("leak_report", "heap_snapshot", "error"):
                run.replies.put(message)

    def _read_stderr(self, run: Run) -> None:
        for line in run.proc.stderr:
            line = line.rstrip()
            if line:
                run.stderr_tail.append(line)

    def request(self, run_id: str, command: dict, timeout: float) -> dict:
        """Send a command to a running worker and wait for its reply."""
        run = self.get(run_id)
        if not run.alive:
            raise errors.Conflict(f"run {run_id} is {run.state}, not running", code="run_ended")
        with run.stdin_lock:
            while not run.replies.empty():
                run.replies.get_nowait()
            try:
                run.proc.stdin.write(json.dumps(command) + "\n")
                run.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                raise errors.Conflict(f"run {run_id} has ended", code="run_ended") from None
            try:
                reply = run.replies.get(timeout=timeout)
            except queue.Empty:
                raise errors.Unavailable(
                    f"run {run_id} did not answer in {timeout:.0f} s"
                ) from None
        if reply.get("type") == "error":
            raise errors.BadRequest(reply.get("message", "the worker refused the command"))
        return reply

    def leak_report(self, run_id: str, seconds: float) -> dict:
        run = self.get(run_id)
        if run.runtime != "python":
            raise errors.BadRequest("a tracemalloc leak report needs a Python run")
        return self.request(run_id, {"cmd": "leak_report", "seconds": seconds}, seconds + 15)

    def heap_snapshot(self, run_id: str) -> Path:
        run = self.get(run_id)
        if run.runtime != "node":
            raise errors.BadRequest("a heap snapshot needs a Node run")
        path = (
            self.snapshot_dir
            / f"{run.scenario}-{run.variant}-{run.pid}-{int(time.time())}.heapsnapshot"
        )
        self.request(run_id, {"cmd": "heap_snapshot", "path": str(path)}, 120)
        return path

    # -- stopping ----------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        with self._lock:
            run = self.runs.get(run_id) if isinstance(run_id, str) else None
        if run is None:
            raise errors.NotFound(f"no run {run_id!r}", code="unknown_run")
        return run

    def list(self) -> list[Run]:
        with self._lock:
            return list(self.runs.values())

    def stop(self, run_id: str, state: str = "stopped", reason: str = "stopped by a viewer") -> Run:
        run = self.get(run_id)
        if not run.alive:
            raise errors.Conflict(f"run {run_id} is already {run.state}", code="run_ended")
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
        _terminate(run.proc)
        for service in run.services:
            _terminate(service)
        self._finish(run)

    def _finish(self, run: Run) -> None:
        """Record how a run ended (once), release its watches and services, tell viewers."""
        _signal_group(run.proc, signal.SIGKILL)  # children that outlived the worker
        code = run.proc.wait()
        with self._lock:
            if not run.alive:
                return
            run.exit_code = code
            run.ended_at = time.time()
            if run.stop_requested:
                run.state = run.stop_requested
            elif code == _SELF_CAPPED_EXIT:
                run.state = "capped"
            elif code == 0:
                # The worker ended itself at its time cap.
                run.state = "capped"
                run.reason = run.reason or f"time cap of {run.max_seconds:g} s reached"
            else:
                run.state = "crashed"
                run.reason = _crash_reason(run, code)
        for service in run.services:
            _terminate(service)
        if run.proc.stdin:
            try:
                run.proc.stdin.close()
            except OSError:
                pass
        if self.sampler is not None:
            self.sampler.release(f"run:{run.run_id}")
        self._announce(run)

    def _announce(self, run: Run) -> None:
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
        parents = memory.parent_map() if alive else {}  # one pass over /proc for every run
        for run in alive:
            if _has_exited(run.proc):
                self._finish(run)
                continue
            run.rss = _tree_rss(run.pid, parents)
            if run.rss > run.max_rss:
                self._end(
                    run,
                    "capped",
                    f"rss {run.rss / 2**20:.0f} MiB over the {run.max_rss // 2**20} MiB cap",
                )
            elif now - run.started_at > run.max_seconds + 5:  # the worker's own cap failed
                self._end(run, "capped", f"time cap of {run.max_seconds:g} s reached")
        total = sum(r.rss for r in alive if r.alive)
        if total > self.memory_budget:
            biggest = max((r for r in alive if r.alive), key=lambda r: r.rss)
            self._end(
                biggest,
                "capped",
                f"all runs together passed memdash's budget of {self.memory_budget // 2**20} MiB",
            )


# -- helpers run on the spawner thread ---------------------------------------------------------


def _popen(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group: stopping it stops its children too
        preexec_fn=_die_with_parent(os.getpid()),
        cwd=str(Path(__file__).resolve().parent.parent),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis() -> tuple[subprocess.Popen, int]:
    """A private redis-server on a free loopback port, gone with the run (and with memdash)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise errors.Unavailable("redis-server is not installed (make setup installs it)")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory",
            "64mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise errors.Unavailable(f"redis-server exited at start (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    _terminate(proc)
    raise errors.Unavailable("redis-server did not start listening within 10 s")


def _has_exited(proc: subprocess.Popen) -> bool:
    """True once ``proc`` has exited, *without* reaping it: while it is unreaped its PID, and
    so its process group id, cannot be given to another process, so signalling the group
    can only reach processes we started."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    if proc.returncode is None:  # not reaped: the group id is still ours
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _terminate(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL, the process group of a child we started; then reap it."""
    if proc.returncode is not None:
        return
    _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while not _has_exited(proc) and time.monotonic() < deadline:
        time.sleep(0.02)
    _signal_group(proc, signal.SIGKILL)  # the leader, or children that outlived it
    proc.wait()


def _tree_rss(pid: int, parents: dict[int, int]) -> int:
    total = 0
    for one in [pid, *memory.descendants(pid, parents)]:
        try:
            total += memory.read_fast(one)["rss"]
        except errors.MemdashError:
            pass
    return total


def _crash_reason(run: Run, code: int) -> str:
    lines = list(run.stderr_tail)
    for line in reversed(lines):
        low = line.lower()
        if "memoryerror" in low or "out of memory" in low or "heap limit" in low:
            return f"out of memory: {line.strip()}"
    how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return f"{how}: {lines[-1]}" if lines else how
