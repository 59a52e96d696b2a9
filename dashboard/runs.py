"""One leak-lab run: its processes, its state, how it ended (in words), what it said, and how
to ask it things."""

from __future__ import annotations

import collections
import json
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import errors

if TYPE_CHECKING:
    from .sampler import Sampler

MiB = 2**20
SELF_CAPPED_EXIT = 3  # exit code of a worker that stopped at its own memory cap
ALIVE = ("starting", "running")  # then one of stopped, capped, crashed
MARK_KINDS = {"stopped": "stop", "capped": "cap", "crashed": "crash"}  # state -> `mark` kind
# Seconds of RSS kept per process, for "which one grows" when the estimator does not know:
# short, so that the start-up climb of a process that has since settled is soon forgotten.
_RISE_WINDOW = 4.0
# The line of a crash that says why: an exception's last line (Python: "MemoryError",
# "RuntimeError: ..."; Node: "Error: ...", "RangeError: ..."), not indented like a traceback.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b(: .*)?$")


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
    services: list[subprocess.Popen] = field(default_factory=list)  # its redis-server
    stderr_tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200))
    replies: queue.Queue = field(default_factory=queue.Queue)
    stop_requested: str | None = None  # the state to report once it has exited
    rss: int = 0  # of the worker and its descendants, as the sampler last read it
    stdin_lock: threading.Lock = field(default_factory=threading.Lock)
    # descendants of the worker (shared_cache's worker processes), as the sampler found them
    workers: list[int] = field(default_factory=list)
    growth: dict | None = None  # of the worker's tree (main + workers), from the estimator
    process_growth: dict[int, dict | None] = field(default_factory=dict)
    rss_seen: dict[int, collections.deque] = field(default_factory=dict)  # pid -> (t, rss)
    rss_ignored: dict[int, float] = field(default_factory=dict)  # pid -> until (a tool acts)
    readers: list[threading.Thread] = field(default_factory=list)  # its stdout/stderr readers
    snapshots: list[Path] = field(default_factory=list)  # heap snapshots written for it
    announced: tuple | None = None  # what the last `run` event said (verdicts, processes)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.state in ALIVE

    def roles(self) -> list[tuple[int, str]]:
        """(pid, role) of every process of the run: the worker memdash started, its
        descendants, then its services."""
        return (
            [(self.pid, "main")]
            + [(pid, "worker") for pid in self.workers]
            + [(s.pid, "redis") for s in self.services]
        )

    def processes(self) -> list[dict]:
        return [
            {"pid": pid, "role": role, "growth": self.process_growth.get(pid)}
            for pid, role in self.roles()
        ]

    def signature(self) -> tuple:
        """What, when it changes, is worth a `run` event from the monitor."""
        verdict = (self.growth or {}).get("verdict")
        per = tuple(
            (p["pid"], p["role"], (p["growth"] or {}).get("verdict")) for p in self.processes()
        )
        return self.state, verdict, per

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
            "growth": self.growth,
            "processes": self.processes(),
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

    # -- its processes and which one grows -----------------------------------------------------

    def track(
        self, sampler: Sampler, growth: Callable[[int, bool], dict | None], now: float
    ) -> None:
        """Find the worker's descendants (shared_cache's worker processes) in the sampler's
        tree of it and keep each sampled on its own; read every process's growth and RSS."""
        tree = sampler.target(self.pid, True)
        if tree is not None:
            try:
                found = [pid for pid in list(tree.readers) if pid != self.pid]
            except RuntimeError:  # changed while we read it: next time
                found = self.workers
            for pid in found:
                if pid not in self.workers:
                    try:
                        sampler.keep(pid, False, owner=f"run:{self.run_id}")
                    except errors.MemdashError:
                        continue  # gone already
                    self.workers.append(pid)
            self.workers = [pid for pid in self.workers if pid in found]
        self.growth = growth(self.pid, True)
        for pid, _role in self.roles():
            self.process_growth[pid] = growth(pid, False)
            latest = sampler.latest(pid, False)
            if latest is not None:
                self.saw_rss(pid, now, latest["rss"])

    def ignore_rss(self, pid: int, until: float) -> None:
        """Forget ``pid``'s recent RSS and ignore it until ``until``: a tool acts on it."""
        self.rss_ignored[pid] = until
        self.rss_seen.pop(pid, None)

    def saw_rss(self, pid: int, t: float, rss: int) -> None:
        if t < self.rss_ignored.get(pid, 0.0):
            return
        seen = self.rss_seen.setdefault(pid, collections.deque())
        seen.append((t, rss))
        while seen and seen[0][0] < t - _RISE_WINDOW:
            seen.popleft()

    def rss_rise(self, pid: int) -> int:
        """How much ``pid``'s RSS rose over the last seconds (0 when unknown)."""
        seen = self.rss_seen.get(pid)
        return seen[-1][1] - seen[0][1] if seen else 0

    # -- talking to the worker ----------------------------------------------------------------

    def request(self, command: dict, timeout: float) -> dict:
        """Send a command to the worker (a JSON line on its stdin) and wait for its reply,
        which the pool's stdout reader puts in ``replies``. A command with a "pid" other than
        the worker's own is forwarded by the worker to that child process."""
        if not self.alive:
            raise errors.RunEnded(f"run {self.run_id} is {self.state}, not running")
        with self.stdin_lock:
            while not self.replies.empty():  # a late reply to an earlier, timed-out command
                self.replies.get_nowait()
            try:
                self.proc.stdin.write(json.dumps(command) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                raise errors.RunEnded(f"run {self.run_id} has ended") from None
            try:
                reply = self.replies.get(timeout=timeout)
            except queue.Empty:
                if not self.alive:
                    raise errors.RunEnded(f"run {self.run_id} ended meanwhile") from None
                raise errors.Unavailable(
                    f"run {self.run_id} did not answer in {timeout:.0f} s"
                ) from None
        if reply.get("type") == "error":
            raise errors.BadRequest(reply.get("message", "the worker refused the command"))
        return reply

    def read_stderr(self) -> None:
        """Keep the last lines the worker wrote on stderr (a crash's reason); until EOF."""
        for line in self.proc.stderr:
            line = line.rstrip()
            if line:
                self.stderr_tail.append(line)

    def close_stdin(self) -> None:
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    # -- how it ended -------------------------------------------------------------------------

    def settle(self, code: int) -> None:
        """Record how the worker ended (call once, under the pool's lock)."""
        self.exit_code = code
        if self.stop_requested:
            self.state = self.stop_requested
        elif code == SELF_CAPPED_EXIT:
            self.state = "capped"
            self.reason = self.reason or f"memory cap {self.max_rss // MiB} MiB"
        elif code == 0:  # the worker ended itself at its time cap
            self.state = "capped"
            self.reason = self.time_cap()
        else:
            self.state = "crashed"
            self.reason = self.crash_reason(code)

    def time_cap(self) -> str:
        return f"time cap {self.max_seconds:g} s reached"

    def crash_reason(self, code: int) -> str:
        """Why the worker died, in the words of the runtime that killed it: "JavaScript heap
        out of memory", "MemoryError: out of memory", an exception's message; a signal or an
        exit code only when it said nothing."""
        lines = [line.strip() for line in self.stderr_tail]
        for line in reversed(lines):
            if "JavaScript heap out of memory" in line:
                return "JavaScript heap out of memory"
            if line.startswith("MemoryError"):
                limit = " (address-space limit reached)" if "RLIMIT_AS" in line else ""
                return f"MemoryError: out of memory{limit}"
        for line in reversed(lines):
            if line.startswith("FATAL ERROR:"):  # V8's other fatal errors
                return line.removeprefix("FATAL ERROR:").strip()
            if _EXCEPTION_LINE.match(line):
                return line
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"killed by {name}"
        else:
            how = f"exited with code {code}"
        return f"{lines[-1]} ({how})" if lines else how
