"""Collects the language-heap reports of Node and Python programs started by memdash.

One Unix stream socket per run, in a private (0700) temporary directory; its path goes to the
children in MEMDASH_REPORT (see ``env.child_env``). Every process that loaded a reporter
opens its own connection and writes one JSON line a second. The sender is whoever the kernel
says is at the other end (SO_PEERCRED), never what a message claims, so a forked worker is
its own process as soon as it connects.

One thread serves the listening socket and every connection through ``selectors``. What
arrives is untrusted: lines longer than ``MAX_LINE`` and anything that is not a JSON object
are dropped, fields must be known names with non-negative int values (others are left out),
and each connection passes on at most ``rate`` reports a second (the excess is dropped and
counted). A connection that sends more than ``BYTES_PER_SECOND`` is not read until its budget
refills, so a flood costs this thread little and the dashboard keeps streaming.

The connection also carries commands back (``request``): memdash writes one JSON line
``{"cmd": ..., "id": n, ...}`` and the reporter answers with one line ``{"reply": n, "type":
...}`` (up to ``MAX_REPLY`` bytes, and only while a command is pending), e.g. ``leak_report``
from a Python program started with tracemalloc.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import selectors
import shutil
import socket
import struct
import tempfile
import threading
import time
from typing import Callable, Optional

from dashboard import errors
from dashboard.reporters.wire import (  # noqa: F401  (FIELDS and parse: the package's API)
    BYTES_PER_SECOND,
    FIELDS,
    MAX_CONNECTIONS,
    Connection,
    parse,
)

log = logging.getLogger(__name__)

_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}

Callback = Callable[[int, dict], None]


class Receiver:
    """Listens on ``path`` (default: a new private temporary directory) and calls
    ``callback(pid, fields)`` from its own thread for each accepted report."""

    def __init__(self, callback: Callback, path: Optional[str] = None, rate: float = 5.0):
        self.callback = callback
        self.rate = rate
        self._own_dir = None
        if path is None:
            self._own_dir = tempfile.mkdtemp(prefix="memdash-")  # mode 0700
            if len(self._own_dir) > 80:  # a Unix socket path has ~107 bytes at most
                os.rmdir(self._own_dir)
                self._own_dir = tempfile.mkdtemp(prefix="memdash-", dir="/tmp")
            path = os.path.join(self._own_dir, "report.sock")
        self.path = path
        self._lock = threading.Lock()
        self._runtimes: dict[int, Optional[str]] = {}
        self._counts: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._listener: Optional[socket.socket] = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._conns: dict[socket.socket, Connection] = {}
        self._by_pid: dict[int, Connection] = {}  # the latest connection of each PID
        self._ids = itertools.count(1)
        self._selector = selectors.DefaultSelector()

    # -- public ------------------------------------------------------------------------------

    def start(self) -> Receiver:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="memdash-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, close every connection, remove the socket (and its directory)."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(5)
        for conn in list(self._conns.values()):
            for slot in conn.pending.values():  # waiting requests end: "went away"
                slot[0].set()
            conn.sock.close()
        self._conns.clear()
        with self._lock:
            self._by_pid.clear()
        if self._listener is not None:
            self._listener.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
        elif os.path.exists(self.path):
            os.unlink(self.path)

    def pids_reporting(self) -> set[int]:
        """PIDs that sent at least one valid report (still running or not)."""
        with self._lock:
            return set(self._runtimes)

    def runtime(self, pid: int) -> Optional[str]:
        """ "node" or "python" for a PID that reported, else None."""
        with self._lock:
            return self._runtimes.get(pid)

    def counts(self) -> dict[str, int]:
        """Totals since start: connections, reports (passed on), garbage, dropped (rate)."""
        with self._lock:
            return {k: self._counts[k] for k in ("connections", "reports", "garbage", "dropped")}

    def request(self, pid: int, command: dict, timeout: float) -> dict:
        """Send ``command`` (``{"cmd": ...}``) to the reporter in ``pid`` and return its reply
        (without the ``reply`` id). Raises memdash errors: Unavailable (``pid`` does not report
        or did not answer in ``timeout`` s), ProcessGone (it went away meanwhile), BadRequest
        (it refused: e.g. ``leak_report`` without tracemalloc)."""
        with self._lock:
            conn = self._by_pid.get(pid)
        if conn is None:
            raise errors.Unavailable(f"process {pid} does not report a language heap to memdash")
        rid = next(self._ids)
        slot: list = [threading.Event(), None]
        with self._lock:
            conn.pending[rid] = slot
        try:
            line = (json.dumps({**command, "id": rid}) + "\n").encode()
            with conn.write_lock:
                try:
                    conn.sock.sendall(line)
                except BlockingIOError:
                    raise errors.Unavailable(f"process {pid} is not reading its commands") from None
                except OSError:
                    raise errors.ProcessGone(f"process {pid} is gone") from None
            if not slot[0].wait(timeout):
                raise errors.Unavailable(f"process {pid} did not answer in {timeout:.0f} s")
        finally:
            with self._lock:
                conn.pending.pop(rid, None)
        reply = slot[1]
        if reply is None:
            raise errors.ProcessGone(f"process {pid} went away before answering")
        if reply.get("type") == "error":
            raise errors.BadRequest(str(reply.get("message") or "the program refused the command"))
        return {k: v for k, v in reply.items() if k != "reply"}

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            paused = [c for c in self._conns.values() if c.paused_until]
            for conn in paused:
                if conn.paused_until <= now:
                    conn.paused_until = 0.0
                    self._selector.register(conn.sock, selectors.EVENT_READ)
            timeout = min((c.paused_until for c in paused if c.paused_until), default=now + 1.0)
            for key, _ in self._selector.select(max(0.0, timeout - now)):
                try:
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is not self._wake_r:
                        self._read(self._conns[key.fileobj])
                except Exception:  # one bad connection must not end the receiver
                    log.exception("report receiver")

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        pid, uid, _ = _UCRED.unpack(cred)
        # The directory is private already; a peer of another user, a PID outside our PID
        # namespace (0) or one connection too many is closed at once.
        if uid != os.geteuid() or pid <= 0 or len(self._conns) >= MAX_CONNECTIONS:
            sock.close()
            return
        sock.setblocking(False)
        conn = self._conns[sock] = Connection(sock, pid, self.rate)
        self._selector.register(sock, selectors.EVENT_READ)
        with self._lock:
            self._by_pid[pid] = conn
            self._counts["connections"] += 1

    def _close(self, conn: Connection) -> None:
        if not conn.paused_until:
            self._selector.unregister(conn.sock)
        del self._conns[conn.sock]
        with self._lock:
            if self._by_pid.get(conn.pid) is conn:
                del self._by_pid[conn.pid]
            pending, conn.pending = conn.pending, {}
        for slot in pending.values():  # reply stays None: gone before answering
            slot[0].set()
        with conn.write_lock:
            conn.sock.close()

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        now = time.monotonic()
        conn.refill(now)
        conn.budget -= len(data)
        if conn.budget < 0:  # flooding: stop reading it until the byte budget is back
            self._selector.unregister(conn.sock)
            conn.paused_until = now + -conn.budget / BYTES_PER_SECOND
        lines = conn.lines(data)
        garbage, dropped, conn.overlong = conn.overlong, 0, 0
        for line in lines:
            if conn.pending and line.startswith(b'{"reply"') and self._answer(conn, line):
                continue
            if conn.tokens < 1:
                dropped += 1
                continue
            parsed = parse(line)
            if parsed is None:
                garbage += 1
                continue
            conn.tokens -= 1
            self._deliver(conn.pid, *parsed)
        if garbage or dropped:
            with self._lock:
                self._counts["garbage"] += garbage
                self._counts["dropped"] += dropped

    def _answer(self, conn: Connection, line: bytes) -> bool:
        """Hand a reply line to the request waiting for it; False if it is not one."""
        try:
            reply = json.loads(line)
        except ValueError:
            return False
        rid = reply.get("reply") if isinstance(reply, dict) else None
        with self._lock:
            slot = conn.pending.get(rid) if isinstance(rid, int) else None
        if slot is None:
            return False
        slot[1] = reply
        slot[0].set()
        return True

    def _deliver(self, pid: int, runtime: Optional[str], fields: dict) -> None:
        with self._lock:
            if runtime is not None or pid not in self._runtimes:
                self._runtimes[pid] = runtime
            self._counts["reports"] += 1
        try:
            self.callback(pid, fields)
        except Exception:
            log.exception("report callback failed for pid %s", pid)
