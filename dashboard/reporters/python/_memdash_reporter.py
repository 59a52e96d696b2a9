"""memdash's Python reporter: a quiet thread that sends this interpreter's own figures.

Started by the ``sitecustomize`` next to this file when ``MEMDASH_REPORT`` names the Unix
socket of a memdash receiver, or in a running Python >= 3.14 by ``memdash --pid PID --inspect``
(``sys.remote_exec``, dashboard/reporters/attach.py); it ends when that socket goes away.
Once a second it sends one JSON line over its own connection:
``sys.getallocatedblocks()``, gc counters and, with ``MEMDASH_TRACEMALLOC=1``, tracemalloc's
traced current/peak. The receiver learns who is talking from the kernel (SO_PEERCRED), so a
forked child opens a connection of its own.

Rules this module keeps, because it runs inside someone else's program:
- start-up cost: only C modules that are cheap to import (``_thread``, ``_socket``,
  ``_tracemalloc``, ``gc``), no ``json``/``socket``/``threading`` (several ms each);
  the connection is made in the thread, not at start-up;
- it never prints and never raises: any error ends the reporter silently;
- it never blocks the program: sends are non-blocking (a full socket drops that report), and
  nothing here holds a lock the program could need;
- its thread stops around ``os.fork()`` (Python >= 3.12 warns about forking a multi-threaded
  process) and starts again in both parent and child.

Commands come back over the same connection, one JSON line each (``{"cmd", "id", ...}``), and
are answered with one line ``{"reply": id, "type": ...}``: ``leak_report`` (tracemalloc only),
in ``_memdash_leaks``, imported only then.
"""

import _socket
import _thread
import gc
import os
import sys
import time

INTERVAL = 1.0  # seconds between reports
CONNECT_TIMEOUT = 1.0
_FLAGS = getattr(_socket, "MSG_DONTWAIT", 0) | getattr(_socket, "MSG_NOSIGNAL", 0)
# Python >= 3.13 counts the process's threads for its fork warning *after* the at-fork
# "after_in_parent" hooks have run, so the parent's thread comes back at the next collection.
_RESTART_ON_GC = sys.version_info >= (3, 13)


class Reporter:
    def __init__(self, path: str, traced: bool) -> None:
        self.path = path
        self.traced = traced
        self.sock = None
        self.dead = False  # an error happened: quiet for the rest of this process's life
        self.running = False
        self.stopping = False
        self.wake = _thread.allocate_lock()  # held while the thread sleeps; released = wake up
        self.handle = None  # Python >= 3.13: join() waits for the OS thread itself
        self.sentinel = None  # Python <= 3.12: released once the thread's state is gone
        self.restart_pending = False
        self.tid = 0
        self.started = _thread.allocate_lock()  # Python <= 3.12: released once sentinel is set
        self.gc_hook = self._on_gc  # one bound method, so gc.callbacks can find it again
        self.inbox = b""  # commands received, up to the end of the last complete line
        self.leak = None  # a leak report under way: (id, due, seconds, before, rss, traced)

    # -- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        if self.dead or self.running:
            return
        self.stopping = False
        self.wake = _thread.allocate_lock()
        self.wake.acquire()
        self.handle = self.sentinel = None
        self.running = True
        try:
            joinable = getattr(_thread, "start_joinable_thread", None)
            if joinable is not None:
                self.handle = joinable(self._run, daemon=True)
            else:
                self.started = _thread.allocate_lock()
                self.started.acquire()
                _thread.start_new_thread(self._run, (self.started,))
        except Exception:
            self.running = False
            self.dead = True

    def stop(self, timeout: float = 1.0) -> None:
        """Wake the thread and wait (bounded) until it has ended. Ended, not just left its
        loop: a thread that still exists at fork time is what Python >= 3.12 warns about."""
        if not self.running:
            return
        self.stopping = True
        if self.wake.locked():
            try:
                self.wake.release()
            except RuntimeError:
                pass
        if self.handle is not None:
            self.handle.join(timeout)
            ended = self.handle.is_done()
        else:
            self.started.acquire(timeout=timeout)  # the thread has made its sentinel
            ended = self.sentinel is None or self.sentinel.acquire(timeout=timeout)
            if ended:
                self._wait_os_thread_gone()
        if ended:
            self.running = False
        # else: stuck in a connect; it leaves by itself, and running stays True so that no
        # second thread is started beside it (this process then goes quiet: rare, harmless).

    def _wait_os_thread_gone(self) -> None:
        """Python <= 3.12: the sentinel is released just before the OS thread ends; Linux
        shows when it has (bounded: 0.1 s)."""
        task = f"/proc/self/task/{self.tid}"
        pause = _thread.allocate_lock()
        pause.acquire()
        for _ in range(200):
            if not os.path.exists(task):
                return
            pause.acquire(timeout=0.0005)

    def _run(self, started=None) -> None:
        self.tid = _thread.get_native_id()
        if started is not None:
            sentinel = _thread._set_sentinel()  # as threading does: taken here, released by
            sentinel.acquire()  # the interpreter once this thread's state is deleted
            self.sentinel = sentinel
            started.release()
        try:
            while not self.stopping and not self.dead:
                if self.sock is None:
                    self._connect()
                self._send()
                self._commands()
                pause = INTERVAL
                if self.leak is not None:  # wake up when the leak report is due
                    pause = min(INTERVAL, max(0.0, self.leak[1] - time.monotonic()))
                self.wake.acquire(timeout=pause)  # returns early when stop() releases it
        except Exception:
            self.dead = True
            self._close()

    # -- the connection ----------------------------------------------------------------------

    def _connect(self) -> None:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(self.path)
            sock.setblocking(False)  # a timeout socket would wait for room before each send
        except Exception:
            sock.close()
            raise
        self.sock = sock

    def _send(self) -> None:
        try:
            self.sock.send(self.report().encode(), _FLAGS)
        except BlockingIOError:
            pass  # the receiver is behind: drop this one report, never wait for it

    def _close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass

    # -- commands ----------------------------------------------------------------------------

    def _commands(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            data = None
        if data == b"":
            raise ConnectionError("memdash closed the connection")
        if data:
            self.inbox += data
            while b"\n" in self.inbox:
                line, _, self.inbox = self.inbox.partition(b"\n")
                self._command(line)
            if len(self.inbox) > 65536:  # no command is that long
                self.inbox = b""
        if self.leak is not None and time.monotonic() >= self.leak[1]:
            import _memdash_leaks

            leak, self.leak = self.leak, None
            self._reply(leak[0], _memdash_leaks.finish(leak))

    def _command(self, line: bytes) -> None:
        import json

        try:
            cmd = json.loads(line)
        except ValueError:
            return
        if not isinstance(cmd, dict):
            return
        rid, name = cmd.get("id"), cmd.get("cmd")
        if name != "leak_report":
            self._reply(rid, {"type": "error", "message": f"unknown command: {name!r}"})
        elif not self.traced:  # checked here: an attached program cannot import the module
            message = (
                "leak_report needs tracemalloc: start the program with memdash run --tracemalloc"
            )
            self._reply(rid, {"type": "error", "message": message})
        else:
            import _memdash_leaks  # only when asked: it is not loaded into every program

            error, self.leak = _memdash_leaks.begin(rid, cmd.get("seconds", 5), self.leak)
            if error is not None:
                self._reply(rid, error)

    def _reply(self, rid, body: dict) -> None:
        import json

        line = json.dumps({"reply": rid, "pid": os.getpid(), **body}) + "\n"
        self.sock.settimeout(2.0)  # a reply is not dropped like a report: wait a little
        try:
            self.sock.sendall(line.encode())
        finally:
            self.sock.setblocking(False)

    # -- the figures -------------------------------------------------------------------------

    def report(self) -> str:
        """One JSON line; built by hand from ints so ``json`` need not be imported."""
        gen0, gen1, gen2 = gc.get_count()
        stats = gc.get_stats()
        fields = [
            ("py_blocks", sys.getallocatedblocks()),
            ("gc_gen0", gen0),
            ("gc_gen1", gen1),
            ("gc_gen2", gen2),
            ("gc_collections", sum(s["collections"] for s in stats)),
            ("gc_collected", sum(s["collected"] for s in stats)),
            ("gc_uncollectable", sum(s["uncollectable"] for s in stats)),
        ]
        if self.traced:
            import _tracemalloc  # already imported by start(); a dict lookup here

            if _tracemalloc.is_tracing():
                current, peak = _tracemalloc.get_traced_memory()
                # heap_used/heap_total: the same meaning as for the leak lab's Python workers
                fields += [
                    ("traced_current", current),
                    ("traced_peak", peak),
                    ("heap_used", current),
                    ("heap_total", peak),
                ]
        body = ",".join(f'"{name}":{int(value)}' for name, value in fields)
        return '{"runtime":"python",' + body + "}\n"

    # -- fork --------------------------------------------------------------------------------

    def before_fork(self) -> None:
        self.stop()

    def after_fork_in_parent(self) -> None:
        if _RESTART_ON_GC and gc.isenabled():
            self.restart_pending = True
            if self.gc_hook not in gc.callbacks:
                gc.callbacks.append(self.gc_hook)
        else:
            self.start()

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase != "stop" or not self.restart_pending:
            return
        self.restart_pending = False
        self.start()
        callbacks = gc.callbacks
        # gc walks its callback list by index: only the last one can leave without making
        # gc skip someone else's callback this time; otherwise stay, as a no-op.
        if callbacks and callbacks[-1] == self.gc_hook:
            callbacks.pop()

    def after_fork_in_child(self) -> None:
        self.restart_pending = False
        self.inbox, self.leak = b"", None  # the parent's commands, not ours
        # The inherited socket is the parent's connection: close our copy of the descriptor
        # (close, not shutdown, which would end the parent's connection too) and open our own.
        self._close()
        self.running = False
        self.start()


_reporter = None


def start(path=None, traced=None) -> None:
    """Start reporting to ``path`` (default: MEMDASH_REPORT), tracing allocations when
    ``traced`` (default: MEMDASH_TRACEMALLOC=1); never raises, never prints. The arguments
    are for an attach into a running interpreter (sys.remote_exec), whose environment was
    fixed at its start."""
    global _reporter
    try:
        path = path or os.environ.get("MEMDASH_REPORT")
        if not path:
            return
        if _reporter is not None and not _reporter.dead and _reporter.path == path:
            return  # already reporting there
        # Else a first start, or an attach (sys.remote_exec) after the receiver of an earlier
        # one went away (that reporter is dead: its thread has ended) or towards another one.
        if traced is None:
            traced = os.environ.get("MEMDASH_TRACEMALLOC") == "1"
        if traced:
            import _tracemalloc

            if not _tracemalloc.is_tracing():
                # Started as early as possible so allocations from start-up on are traced;
                # the frame depth honours PYTHONTRACEMALLOC when the user set one.
                _tracemalloc.start(max(1, int(os.environ.get("PYTHONTRACEMALLOC") or 1)))
        _reporter = Reporter(path, traced)
        os.register_at_fork(
            before=_reporter.before_fork,
            after_in_parent=_reporter.after_fork_in_parent,
            after_in_child=_reporter.after_fork_in_child,
        )
        _reporter.start()
    except Exception:
        pass
