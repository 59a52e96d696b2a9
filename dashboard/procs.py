"""Child processes memdash starts for the leak lab, and how they are signalled.

- every child runs in its own process group (stopping it stops its children too), with the
  Linux parent-death signal set: if memdash dies, even by ``kill -9``, the kernel kills it.
  The signal follows the *thread* that forked, so call :func:`popen` and :func:`start_redis`
  from one long-lived thread (WorkerPool's spawner);
- only processes started here are ever signalled, and only while unreaped, so their process
  group id cannot belong to anyone else.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

from . import errors

_PR_SET_PDEATHSIG = 1
_ROOT = Path(__file__).resolve().parent.parent


def _die_with_parent(parent: int) -> Callable[[], None]:
    """preexec_fn: SIGKILL this child when the spawning thread's process dies."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def popen(argv: list[str], stderr: int = subprocess.PIPE) -> subprocess.Popen:
    """A scenario worker: JSON lines on stdin/stdout (text, line-buffered), stderr kept
    (a pipe, unless told otherwise: the benchmarks do not read it)."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        bufsize=1,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),
        cwd=str(_ROOT),
    )


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen, int]:
    """A private redis-server on a free loopback port, gone with the run (and with memdash)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise errors.Unavailable("redis-server is not installed (make setup installs it)")
    port = free_port()
    # No persistence and a memory cap of its own: it is a demo cache, not a database.
    options = {
        "port": port,
        "bind": "127.0.0.1",
        "save": "",
        "appendonly": "no",
        "maxmemory": "64mb",
        "maxmemory-policy": "allkeys-lru",
    }
    argv = [binary] + [arg for name, value in options.items() for arg in (f"--{name}", str(value))]
    proc = subprocess.Popen(
        argv,
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
    terminate(proc)
    raise errors.Unavailable("redis-server did not start listening within 10 s")


def has_exited(proc: subprocess.Popen) -> bool:
    """True once ``proc`` has exited, *without* reaping it: while it is unreaped its PID, and
    so its process group id, cannot be given to another process, so signalling the group
    can only reach processes we started."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    if proc.returncode is None:  # not reaped: the group id is still ours
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def terminate(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL, the process group of a child we started; then reap it."""
    if proc.returncode is not None:
        return
    signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while not has_exited(proc) and time.monotonic() < deadline:
        time.sleep(0.02)
    signal_group(proc, signal.SIGKILL)  # the leader, or children that outlived it
    proc.wait()
