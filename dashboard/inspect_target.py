"""Which process ``memdash --inspect`` may attach to, and where its Node inspector listens.

Every check here happens before any signal is sent: a live ``node`` executable of this user
(not a zombie), the port SIGUSR1 will open (from --inspect-port / NODE_OPTIONS, default 9229)
free of other listeners. Running Python programs: PEP 768 (``sys.remote_exec``) needs
Python >= 3.14 in the target (memdash calls it through the target's own interpreter).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from typing import Optional

import psutil

DEFAULT_PORT = 9229
_NODE_EXE = re.compile(r"^(node|nodejs)(\d+(\.\d+)*)?$")
_PYTHON_EXE = re.compile(r"^python(\d)\.(\d+)")
_LOOPBACK_BINDS = ("127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1")


class InspectError(Exception):
    """A one-line reason why memdash cannot (or will not) attach."""


# -- who may be attached to ------------------------------------------------------------------


def _process(pid: int) -> psutil.Process:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            raise InspectError(f"process {pid} is a zombie: it has exited; nothing to attach to")
        if proc.uids().real != os.getuid():
            raise InspectError(
                f"process {pid} belongs to another user; memdash attaches only to yours"
            )
        return proc
    except psutil.NoSuchProcess:
        raise InspectError(f"no process with pid {pid}") from None
    except psutil.AccessDenied:
        raise InspectError(f"access to process {pid} denied: it belongs to another user") from None


def _exe_name(proc: psutil.Process) -> str:
    try:
        exe = proc.exe()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        exe = ""
    return os.path.basename(exe) if exe else proc.name()


def runtime_of(pid: int) -> str:
    """``"node"`` or ``"python"`` for a live process of this user, else InspectError."""
    proc = _process(pid)
    name = _exe_name(proc)
    if _NODE_EXE.match(name):
        return "node"
    if name.startswith("python"):
        return "python"
    raise InspectError(
        f"process {pid} ({name}) is not node; --inspect attaches to Node programs only "
        f"(start others with `memdash run -- CMD` for their language heap)"
    )


def check_node(pid: int) -> psutil.Process:
    """The process, if it is a live ``node`` of this user; InspectError otherwise."""
    if runtime_of(pid) != "node":
        raise InspectError(
            python_attach_message(pid)
            or f"process {pid} is a Python program: attach with `memdash --pid {pid} --inspect`"
        )
    return _process(pid)


def python_version_of(pid: int) -> Optional[tuple[int, int]]:
    """The Python version a process runs, from its executable's name (python3.11) or maps."""
    proc = _process(pid)
    try:
        real = os.path.basename(os.path.realpath(f"/proc/{pid}/exe"))
    except OSError:  # not dumpable (e.g. setuid): the kernel hides its executable
        real = ""
    for name in (_exe_name(proc), real):
        match = _PYTHON_EXE.match(name)
        if match:
            return int(match.group(1)), int(match.group(2))
    try:
        for m in proc.memory_maps(grouped=True):
            match = re.search(r"libpython(\d)\.(\d+)", m.path)
            if match:
                return int(match.group(1)), int(match.group(2))
    except psutil.Error:
        pass
    return None


def python_attach_message(pid: int) -> str:
    """Why a running Python program cannot be attached to, or "" when it can: PEP 768
    (``sys.remote_exec``) needs Python >= 3.14 in the target. memdash itself may run on an
    older Python: the call is made through the target's own interpreter (reporters/attach.py)."""
    target = python_version_of(pid)
    if target is not None and target >= (3, 14):
        return ""
    shown = "an unknown Python" if target is None else f"Python {target[0]}.{target[1]}"
    return (
        f"process {pid} runs {shown}: attaching to a running Python program needs "
        "Python >= 3.14 in that program (sys.remote_exec, PEP 768); "
        "start it with `memdash run -- python ...` instead"
    )


# -- where its inspector listens -------------------------------------------------------------


def listening(proc: psutil.Process) -> set[int]:
    """TCP ports ``proc`` listens on."""
    read = getattr(proc, "net_connections", None) or proc.connections
    return {c.laddr.port for c in read(kind="tcp") if c.status == psutil.CONN_LISTEN}


def port_owner(port: int) -> Optional[int]:
    """Whether something listens where Node would bind 127.0.0.1:``port``: its pid (0 when
    it is another user's and the kernel will not say), or None when the port is free."""
    for c in psutil.net_connections(kind="tcp"):
        if (
            c.status == psutil.CONN_LISTEN
            and c.laddr.port == port
            and c.laddr.ip in _LOOPBACK_BINDS
        ):
            return c.pid or 0
    return None


def configured_port(proc: psutil.Process) -> tuple[int, bool]:
    """(the port the inspector uses, whether it was opened at start-up): --inspect-port,
    --inspect[-brk|-wait][=[host:]port] on the command line or in NODE_OPTIONS (the command
    line wins, as in Node), else (9229, False)."""
    words = []
    try:
        words += (proc.environ().get("NODE_OPTIONS") or "").split()
    except psutil.Error:
        pass
    words += proc.cmdline()[1:]
    port, active = DEFAULT_PORT, False
    for i, word in enumerate(words):
        if not word.startswith("-"):
            if i and words[i - 1] in ("--inspect-port", "--debug-port"):
                continue
            break  # the script: what follows are the program's own arguments
        name, _, value = word.partition("=")
        if name in ("--inspect-port", "--debug-port") and not value and i + 1 < len(words):
            value = words[i + 1]
        if name in ("--inspect", "--inspect-brk", "--inspect-wait"):
            active = True
        if name in (
            "--inspect-port",
            "--debug-port",
            "--inspect",
            "--inspect-brk",
            "--inspect-wait",
        ):
            tail = value.rpartition(":")[2]
            if tail.isdigit():
                port = int(tail)
    return port, active


def answers_cdp(port: int) -> bool:
    try:
        return any(t.get("webSocketDebuggerUrl") for t in targets(port))
    except (OSError, ValueError, AttributeError):
        return False


def targets(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as reply:
        return json.load(reply)
