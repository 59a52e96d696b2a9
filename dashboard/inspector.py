"""Attach to a running Node program over the Chrome DevTools Protocol (``memdash --pid PID
--inspect``): its language heap once a second, a heap snapshot, a sampling-profiler leak report.

    check_node(pid)                       # refuses, before any signal, what is not ours to poke
    insp = Inspector(pid, on_heap).attach()   # SIGUSR1 if needed, wait <= 5 s, connect, poll
    insp.heap_snapshot(path); insp.leak_report(seconds); insp.status()
    insp.detach()                         # closes the inspector if memdash opened it

Node opens its inspector on SIGUSR1 (on 127.0.0.1:9229 unless started with --inspect-port),
so the port is found from the target's own listening sockets (psutil), never guessed from
whoever answers on 9229. The WebSocket is websocket-client's; one reader thread dispatches
replies by id and events (heap snapshot chunks) by method (dashboard/cdp.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import psutil
import websocket

from .cdp import Session, top_sites
from .inspect_target import (  # noqa: F401  (re-exported: the CLI's checks)
    InspectError,
    answers_cdp,
    check_node,
    configured_port,
    listening,
    port_owner,
    python_attach_message,
    runtime_of,
    targets,
)

log = logging.getLogger(__name__)

ATTACH_TIMEOUT = 5.0
# Run in the target, so `require` need not exist in the evaluation scope (ES modules, -e):
# process.getBuiltinModule (Node >= 20.16), else the command-line API's require. Closing is
# deferred so that the reply to this very evaluation still goes out on the socket.
_CLOSE = (
    "(() => { const r = typeof process.getBuiltinModule === 'function' ? "
    "process.getBuiltinModule : (typeof require === 'function' ? require : "
    "process.mainModule.require); const i = r('inspector'); setImmediate(() => i.close()); "
    "return 'closing'; })()"
)

# -- attached to one program -----------------------------------------------------------------


class Inspector:
    """``on_heap(pid, {"heap_used", "heap_total", "external", "array_buffers"})`` once a
    second while attached, from the inspector's own thread."""

    def __init__(
        self,
        pid: int,
        on_heap: Callable[[int, dict], None],
        *,
        interval: float = 1.0,
        timeout: float = ATTACH_TIMEOUT,
    ) -> None:
        self.pid = pid
        self.on_heap = on_heap
        self.interval = interval
        self.timeout = timeout
        self.port: Optional[int] = None
        self.opened = False  # memdash opened the inspector (SIGUSR1): it closes it on detach
        self.session: Optional[Session] = None
        self.ended: Optional[str] = None  # why the connection ended, once it has
        self._stop = threading.Event()
        self._tool = threading.Lock()  # one snapshot or profile at a time
        self._poller: Optional[threading.Thread] = None

    def attach(self) -> Inspector:
        """Check the target, open its inspector if needed (SIGUSR1), connect, start polling.
        Raises InspectError with a one-line reason; nothing is signalled unless the checks pass."""
        proc = check_node(self.pid)
        port, active = configured_port(proc)
        before = listening(proc)
        # Already open (--inspect, or an earlier attach), and not ours to close: the target
        # listens on the inspector's port, or on ports of its own after --inspect=0. Only
        # these are asked for /json/list.
        already = [p for p in sorted(before) if p == port or (active and port == 0)]
        already = [p for p in already if answers_cdp(p)]
        if already:
            self.port = already[0]
        else:
            owner = port_owner(port) if port else None
            if owner is not None:
                who = f"process {owner}" if owner else "another user's process"
                raise InspectError(
                    f"port {port} on 127.0.0.1 is taken by {who}: node {self.pid} could not open "
                    "its inspector there; free the port and try again"
                )
            os.kill(self.pid, signal.SIGUSR1)
            self.opened = True
            self.port = self._wait_for_port(proc, port, before)
        self.session = self._connect()
        self._poller = threading.Thread(target=self._poll, name="memdash-inspect", daemon=True)
        self._poller.start()
        return self

    def _wait_for_port(self, proc: psutil.Process, port: int, before: set[int]) -> int:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    raise psutil.NoSuchProcess(self.pid)
                new = listening(proc) - before
            except psutil.NoSuchProcess:
                raise InspectError(
                    f"process {self.pid} exited while memdash was attaching"
                ) from None
            if port in new or (port == 0 and new):
                return port if port in new else min(new)
            if time.monotonic() > deadline:
                owner = port_owner(port) if port else None
                if owner is not None and owner != self.pid:
                    raise InspectError(
                        f"node {self.pid} could not open its inspector: port {port} was taken "
                        "meanwhile by another process"
                    )
                raise InspectError(
                    f"node {self.pid} did not open its inspector within {self.timeout:g} s "
                    "(does it handle SIGUSR1 itself, or run with --disable-sigusr1?)"
                )
            time.sleep(0.05)

    def _connect(self) -> Session:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                found = [t for t in targets(self.port) if t.get("webSocketDebuggerUrl")]
                if found:
                    # Loopback only, whatever address the target advertises.
                    path = found[0]["webSocketDebuggerUrl"].split("/", 3)[3]
                    return Session(f"ws://127.0.0.1:{self.port}/{path}")
            except (OSError, ValueError, websocket.WebSocketException):
                pass
            if not psutil.pid_exists(self.pid):
                raise InspectError(f"process {self.pid} exited while memdash was attaching")
            if time.monotonic() > deadline:
                raise InspectError(
                    f"the inspector of node {self.pid} on port {self.port} did not answer "
                    f"within {self.timeout:g} s"
                )
            time.sleep(0.1)

    def evaluate(self, expression: str, timeout: float = 10.0) -> object:
        """``expression``'s value in the target (JSON-able values only)."""
        if self.session is None:
            raise InspectError("not attached")
        result = self.session.call(
            "Runtime.evaluate",
            {
                "expression": expression,
                "returnByValue": True,
                "silent": True,
                "includeCommandLineAPI": True,
            },
            timeout,
        )
        if "exceptionDetails" in result:
            text = result["exceptionDetails"].get("exception", {}).get("description", "")
            raise InspectError(f"evaluation failed in node {self.pid}: {text.splitlines()[:1]}")
        return result.get("result", {}).get("value")

    def _poll(self) -> None:
        session = self.session
        while not self._stop.is_set() and not session.closed.is_set():
            try:
                m = self.evaluate("process.memoryUsage()")
                self.on_heap(
                    self.pid,
                    {
                        "heap_used": int(m["heapUsed"]),
                        "heap_total": int(m["heapTotal"]),
                        "external": int(m["external"]),
                        "array_buffers": int(m.get("arrayBuffers", 0)),
                    },
                )
            except InspectError as e:
                if session.closed.is_set():
                    break
                log.warning("node %s: %s", self.pid, e)
            except Exception:
                log.exception("inspector poll of node %s", self.pid)
            self._stop.wait(self.interval)
        if session.closed.is_set() and not self._stop.is_set():
            self.ended = "the program exited or closed its inspector"

    # -- tools -------------------------------------------------------------------------------

    def heap_snapshot(self, path: Path) -> dict:
        """A V8 heap snapshot written to ``path`` (open it in Chrome DevTools, Memory tab)."""
        start = time.monotonic()
        with self._tool, open(path, "w", encoding="utf-8") as out:
            self.session.on("HeapProfiler.addHeapSnapshotChunk", lambda p: out.write(p["chunk"]))
            try:
                self.session.call("HeapProfiler.takeHeapSnapshot", {"reportProgress": False}, 300)
            finally:
                self.session.on("HeapProfiler.addHeapSnapshotChunk", None)
        return {
            "type": "heap_snapshot",
            "pid": self.pid,
            "size": path.stat().st_size,
            "seconds": round(time.monotonic() - start, 3),
        }

    def leak_report(self, seconds: float, interval: int = 32768) -> dict:
        """V8's sampling heap profiler over ``seconds``: where the memory that was allocated
        meanwhile and is still alive at the end was allocated, by size."""
        with self._tool:
            before = self.evaluate("process.memoryUsage()")
            self.session.call("HeapProfiler.startSampling", {"samplingInterval": interval})
            try:
                self._stop.wait(seconds)
            finally:
                profile = self.session.call("HeapProfiler.stopSampling", timeout=60)["profile"]
            after = self.evaluate("process.memoryUsage()")
        return {
            "type": "leak_report",
            "method": "sampling heap profiler",
            "pid": self.pid,
            "seconds": seconds,
            "rss_diff": after["rss"] - before["rss"],
            "heap_diff": after["heapUsed"] - before["heapUsed"],
            "top": top_sites(profile),
        }

    # -- state -------------------------------------------------------------------------------

    def status(self) -> dict:
        """For the page: attached or not, the port, and whether memdash opened the inspector."""
        attached = self.session is not None and not self.session.closed.is_set()
        out = {"attached": attached, "port": self.port, "opened_by_memdash": self.opened}
        if self.ended:
            out["ended"] = self.ended
        return out

    def detach(self) -> None:
        """Stop polling; close the inspector if memdash opened it; close the connection."""
        session = self.session
        if session is None or self._stop.is_set():
            return  # never attached, or detached already
        self._stop.set()
        if self.opened and not session.closed.is_set():
            try:
                session.call("Runtime.evaluate", {"expression": _CLOSE, "returnByValue": True}, 5)
            except InspectError as e:
                log.warning("could not close the inspector of node %s: %s", self.pid, e)
        session.close()
        if self._poller is not None:
            self._poller.join(self.interval + 5)
        if self.opened:
            self.ended = self.ended or "detached; memdash closed the inspector it opened"
        else:
            self.ended = self.ended or "detached; the inspector stays open as it was"
