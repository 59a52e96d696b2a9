"""The leak lab's tools on a run's processes: which process a tool acts on, the marks and quiet
spans around an action, and results that say what they examined and, in words, what they
cannot see.

- A tool acts on the process of the run named by ``pid`` (the worker or one of its children:
  shared_cache's worker processes; never its redis-server), else on the one that grows most:
  by the growth estimator, else by how much its RSS rose over the last seconds.
- Every action sends a `mark` event to every viewer and tells the estimator (``quiet``) to
  ignore the span it disturbs: a heap snapshot adds 30-45 MiB of RSS, a tracemalloc snapshot a
  copy of every trace; neither is the run's growth.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import errors
from .runs import MiB, Run

log = logging.getLogger(__name__)

SETTLE = 2.0  # seconds after an action that the estimator ignores too: RSS settles meanwhile


class RunTools:
    """The tool half of :class:`dashboard.workers.WorkerPool` (it provides ``get``, ``list``,
    ``emit``, ``snapshot_dir`` and the ``growth_of`` and ``quiet`` hooks)."""

    snapshot_dir: Path
    emit: Callable
    growth_of: Callable[[int, bool], dict | None]
    quiet: Callable[[list[int], float, float], None]

    def leak_report(self, run_id: str, seconds: float, pid: object = None) -> dict:
        """tracemalloc's diff over ``seconds`` in one Python process of the run (``pid``, or
        the one growing most), with a hint when the growth is outside the Python heap."""
        run = self._running(run_id)
        if run.runtime != "python":
            raise errors.BadRequest("a tracemalloc leak report needs a Python run")
        target = self.tool_pid(run, pid)
        with self.action("find the leak", target, run, expect=seconds + 1):
            command = {"cmd": "leak_report", "seconds": seconds, "pid": target}
            reply = run.request(command, seconds + 15)
        return result(run, target, reply, seconds)

    def heap_snapshot(self, run_id: str, pid: object = None) -> tuple[Path, dict]:
        """A V8 heap snapshot of one Node process of the run (``pid``, or the one growing
        most), written by that process; (its path, the result)."""
        run = self._running(run_id)
        if run.runtime != "node":
            raise errors.BadRequest("a heap snapshot needs a Node run")
        target = self.tool_pid(run, pid)
        name = f"{run.scenario}-{run.variant}-{target}-{int(time.time())}.heapsnapshot"
        path = self.snapshot_dir / name
        with self.action("heap snapshot", target, run, expect=5):
            reply = run.request({"cmd": "heap_snapshot", "path": str(path), "pid": target}, 120)
        run.snapshots.append(path)
        return path, result(run, target, reply, reply.get("seconds") or 0)

    def _running(self, run_id: str) -> Run:
        run = self.get(run_id)
        if not run.alive:
            raise errors.RunEnded(f"run {run_id} has ended ({run.state}); start it again")
        return run

    def tool_pid(self, run: Run, pid: object = None) -> int:
        """The process of ``run`` a tool acts on: ``pid`` if given (checked), else the one
        that grows most."""
        return pick_pid(run, pid, lambda p: self._growth(p, False))

    def run_of(self, pid: int) -> Run | None:
        """The live run ``pid`` is a process of, if any."""
        for run in self.list():
            if run.alive and any(p == pid for p, _ in run.roles()):
                return run
        return None

    @contextlib.contextmanager
    def action(
        self, label: str, pid: int, run: Run | None = None, expect: float = 5.0
    ) -> Iterator[None]:
        """``with pool.action("mappings diff", pid, expect=seconds): ...`` around a tool action
        on ``pid``: a `mark` for every viewer, and the span it disturbs left out of the growth
        of ``pid`` and of its run's tree. ``expect`` (how long it should take) is told to the
        estimator at once, so the verdict does not flicker meanwhile; the real span at the end."""
        run = run or self.run_of(pid)
        pids = sorted({pid, run.pid} if run else {pid})
        start = time.time()
        self._quiet(pids, start, start + expect + SETTLE)
        if run is not None:  # nor does it count as a rise of RSS, for picking a process
            run.ignore_rss(pid, float("inf"))
        mark = {"t": start, "kind": "tool", "label": label, "pid": pid}
        if run is not None:
            mark["run_id"] = run.run_id
        self.emit("mark", mark, None)
        try:
            yield
        finally:
            end = time.time() + SETTLE
            self._quiet(pids, start, end)
            if run is not None:
                run.ignore_rss(pid, end)

    def _quiet(self, pids: list[int], start: float, end: float) -> None:
        try:
            self.quiet(pids, start, end)
        except Exception:  # a broken hook must not break the tool
            log.exception("the quiet hook failed")

    def _growth(self, pid: int, children: bool) -> dict | None:
        try:
            return self.growth_of(pid, children)
        except Exception:
            log.exception("the growth_of hook failed")
            return None

    # provided by WorkerPool
    def get(self, run_id: str) -> Run:
        raise NotImplementedError

    def list(self) -> list[Run]:
        raise NotImplementedError


def pick_pid(run: Run, pid: object, growth: Callable[[int], dict | None]) -> int:
    """``pid`` if it is the run's worker or one of its children (else :class:`errors.BadPid`);
    without one, the one that grows most: growing by ``growth(pid)``, else by its RSS rise."""
    candidates = [run.pid, *run.workers]
    if pid is not None:
        if isinstance(pid, int) and not isinstance(pid, bool) and pid in candidates:
            return pid
        ours = ", ".join(f"{p} ({role})" for p, role in run.roles() if role != "redis")
        if any(pid == s.pid for s in run.services):
            raise errors.BadPid(
                f"pid {pid} is run {run.run_id}'s redis-server, a helper the tools cannot look "
                f"into; pick one of {ours}"
            )
        raise errors.BadPid(f"pid {pid!r} is not a process of run {run.run_id}; pick one of {ours}")
    # The estimator's word first: of the processes it calls growing, the fastest. Before it
    # has one (the first seconds, when a start-up climb still blurs every slope), or when none
    # grows, the one whose RSS rose most over the last seconds.
    rates = {}
    for candidate in candidates:
        known = growth(candidate)
        if known is not None and known.get("verdict") == "growing":
            rates[candidate] = known.get("bytes_per_min", 0)
    if rates:
        return max(rates, key=rates.__getitem__)
    return max(candidates, key=run.rss_rise)


def result(run: Run, pid: int, reply: dict, seconds: float) -> dict:
    """A worker's reply as a tool result: the pid it examined, the run, and a hint when the
    growth was outside the language heap."""
    out = {k: v for k, v in reply.items() if k != "path"}  # a server path is not for clients
    out.update(pid=pid, run_id=run.run_id)
    hint = offheap_hint(run.runtime, reply.get("rss_diff"), reply.get("heap_diff"), seconds)
    if hint:
        out["hint"] = hint
    return out


def offheap_hint(runtime: str, rss_diff: int | None, heap_diff: int | None, seconds: float) -> str:
    """When RSS grew but the language heap did not, the leak is outside the heap, where heap
    tools cannot see it: say so, and where to look instead ("" when that is not the case)."""
    if rss_diff is None or heap_diff is None or rss_diff < 2 * MiB or heap_diff > rss_diff / 4:
        return ""
    heap = "the Python heap (tracemalloc)" if runtime == "python" else "the JavaScript heap"
    where = (
        "mmap, C extensions or the allocator"
        if runtime == "python"
        else "Buffers and other external memory"
    )
    return (
        f"RSS grew {rss_diff / MiB:.1f} MiB in {seconds:g} s while {heap} grew "
        f"{heap_diff / MiB:.1f} MiB: the memory is outside the language heap ({where}), so this "
        "tool cannot show it. Use Mappings diff to see which mappings grow."
    )
