"""Where a process's language heap comes from, and its heap tools, for the web layer.

One ``HeapSources`` per server: the ``Receiver`` of ``memdash run`` (reporters inside the
program and its children) and the ``Inspector``s of ``memdash --pid PID --inspect``.

    sources.describe(pid)                 # for the process description: "no language heap"?
    sources.leak_report(pid, seconds)     # Find the leak (tracemalloc or V8 sampling profiler)
    sources.heap_snapshot(pid, directory) # Node: a .heapsnapshot file -> (path, result)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

from dashboard import errors
from dashboard.inspector import InspectError, Inspector
from dashboard.reporters.receiver import Receiver


class HeapSources:
    def __init__(self) -> None:
        self.receiver: Optional[Receiver] = None
        self.tracemalloc = False  # the run's Python programs trace allocations
        self.inspectors: dict[int, Inspector] = {}
        self.programs: dict[int, dict] = {}  # pid -> {"command", "exit_code"?} (memdash run)
        self._lock = threading.Lock()

    def describe(self, pid: int) -> dict:
        """``{"language_heap": "node"|"python"|None, "heap_source": "reporter"|"inspector"|None,
        "heap_tools": [...], "inspector"?: {...}, "started_by_memdash"?: {...}}``.
        ``language_heap`` None is what the page shows as "no language heap"."""
        out: dict = {"language_heap": None, "heap_source": None, "heap_tools": []}
        inspector = self.inspectors.get(pid)
        if inspector is not None:
            out.update(language_heap="node", heap_source="inspector", inspector=inspector.status())
            if inspector.status()["attached"]:
                out["heap_tools"] = ["heap_snapshot", "leak_report"]
        elif self.receiver is not None and pid in self.receiver.pids_reporting():
            runtime = self.receiver.runtime(pid)
            out.update(language_heap=runtime, heap_source="reporter")
            if runtime == "node":
                out["heap_tools"] = ["heap_snapshot", "leak_report"]
            elif runtime == "python" and self.tracemalloc:
                out["heap_tools"] = ["leak_report"]
        if pid in self.programs:
            out["started_by_memdash"] = dict(self.programs[pid])
        return out

    def leak_report(self, pid: int, seconds: float) -> dict:
        """Where memory allocated over ``seconds`` and still alive was allocated. Raises
        memdash errors (Unavailable: no language heap, or it did not answer)."""
        inspector = self.inspectors.get(pid)
        if inspector is not None:
            try:
                return inspector.leak_report(seconds)
            except InspectError as e:
                raise errors.Unavailable(str(e)) from None
        reply = self._receiver(pid).request(
            pid, {"cmd": "leak_report", "seconds": seconds}, seconds + 30
        )
        return {**reply, "pid": pid}

    def heap_snapshot(self, pid: int, directory: Path) -> tuple[Path, dict]:
        """A V8 heap snapshot of Node process ``pid`` in ``directory``: (its path, the result)."""
        path = Path(directory) / f"node-{pid}-{int(time.time())}.heapsnapshot"
        inspector = self.inspectors.get(pid)
        if inspector is not None:
            try:
                return path, inspector.heap_snapshot(path)
            except InspectError as e:
                raise errors.Unavailable(str(e)) from None
        receiver = self._receiver(pid)
        if receiver.runtime(pid) != "node":
            raise errors.BadRequest(f"a heap snapshot needs a Node process; {pid} is not one")
        reply = receiver.request(pid, {"cmd": "heap_snapshot", "path": str(path)}, 300)
        return path, {**reply, "pid": pid}

    def _receiver(self, pid: int) -> Receiver:
        if self.receiver is None or pid not in self.receiver.pids_reporting():
            raise errors.Unavailable(
                f"process {pid} has no language heap memdash can see: start it with "
                "`memdash run -- CMD` (Node, Python) or attach with --inspect (Node)"
            )
        return self.receiver

    def close(self) -> None:
        """Detach every inspector (closing those memdash opened) and stop the receiver."""
        with self._lock:  # once: the CLI and the server's shutdown may both call it
            inspectors, self.inspectors = list(self.inspectors.values()), {}
            receiver, self.receiver = self.receiver, None
        for inspector in inspectors:
            inspector.detach()
        if receiver is not None:
            receiver.stop()
