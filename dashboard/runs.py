"""One leak-lab run: its worker process, its state, what it said, and how to ask it things."""

from __future__ import annotations

import collections
import json
import queue
import subprocess
import threading
from dataclasses import dataclass, field

from . import errors

SELF_CAPPED_EXIT = 3  # exit code of a worker that stopped at its own memory cap
ALIVE = ("starting", "running")  # then one of stopped, capped, crashed


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
    rss: int = 0  # of the worker and its descendants, as the sampler last read it
    stdin_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.state in ALIVE

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

    def request(self, command: dict, timeout: float) -> dict:
        """Send a command to the worker (a JSON line on its stdin) and wait for its reply,
        which the pool's stdout reader puts in ``replies``."""
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

    def settle(self, code: int) -> None:
        """Record how the worker ended (call once, under the pool's lock)."""
        self.exit_code = code
        if self.stop_requested:
            self.state = self.stop_requested
        elif code == SELF_CAPPED_EXIT:
            self.state = "capped"
        elif code == 0:  # the worker ended itself at its time cap
            self.state = "capped"
            self.reason = self.reason or f"time cap of {self.max_seconds:g} s reached"
        else:
            self.state = "crashed"
            self.reason = self.crash_reason(code)

    def crash_reason(self, code: int) -> str:
        lines = list(self.stderr_tail)
        for line in reversed(lines):
            low = line.lower()
            if "memoryerror" in low or "out of memory" in low or "heap limit" in low:
                return f"out of memory: {line.strip()}"
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return f"{how}: {lines[-1]}" if lines else how
