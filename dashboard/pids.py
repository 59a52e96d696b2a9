"""Which processes there are (the figures they use are dashboard/memory.py's, which
re-exports all of this): a PID checked and identified by :class:`ProcessKey` (PID *and*
create time, so a PID reused by a new process is never mixed into the old one's series),
described, listed by RSS, with its parents and descendants. OS errors become memdash errors
in :func:`translate`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, NamedTuple

import psutil

from . import errors

_PF_KTHREAD = 0x00200000  # task flag of kernel threads (include/linux/sched.h)


def pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except OSError:
        return 4194304


class ProcessKey(NamedTuple):
    pid: int
    create_time: float


# -- turning OS errors into memdash errors -------------------------------------------------


@contextmanager
def translate(pid: int) -> Iterator[None]:
    """Map psutil and OS errors raised while reading ``pid`` to :mod:`dashboard.errors`."""
    try:
        yield
    except psutil.ZombieProcess as e:
        raise errors.ZombieProcess(f"process {pid} is a zombie: it has exited") from e
    except psutil.NoSuchProcess as e:
        raise errors.NoSuchProcess(f"no process with pid {pid}") from e
    except (psutil.AccessDenied, PermissionError) as e:
        raise errors.AccessDenied(
            f"access to process {pid} denied: it belongs to another user; "
            "run memdash as that user or as root"
        ) from e
    except (FileNotFoundError, ProcessLookupError) as e:  # ProcessLookupError is ESRCH
        raise errors.NoSuchProcess(f"no process with pid {pid}") from e


def check_pid(value: object) -> int:
    """Validate a PID given by a client: an int in 1..pid_max (bools and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.BadPid(f"pid must be an integer, got {value!r}")
    if value <= 0 or value > pid_max():
        raise errors.BadPid(f"pid {value} is out of range (1..{pid_max()})")
    return value


def parse_pid(text: str) -> int:
    """Parse a PID from a URL or command line."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise errors.BadPid(f"pid must be an integer, got {text!r}") from None
    return check_pid(value)


# -- identifying processes -----------------------------------------------------------------


def identify(pid: int) -> ProcessKey:
    """Return the key of a live, user-space process, or raise a memdash error."""
    check_pid(pid)
    with translate(pid):
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            if status == psutil.STATUS_ZOMBIE:
                raise errors.ZombieProcess(f"process {pid} is a zombie: it has exited")
            if _is_kernel_thread(pid):
                raise errors.KernelThread(
                    f"process {pid} ({proc.name()}) is a kernel thread: it has no user memory"
                )
            return ProcessKey(pid, proc.create_time())


def _stat_fields(pid: int | str, upto: int = -1) -> list[bytes]:
    """Fields of /proc/PID/stat after the command name (which may hold spaces and ")"):
    state, ppid, pgrp, session, tty_nr, tpgid, flags, ... (proc(5)). ``upto``: as in split()."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return stat[stat.rindex(b")") + 2 :].split(None, upto)


def _is_kernel_thread(pid: int) -> bool:
    return bool(int(_stat_fields(pid, 7)[6]) & _PF_KTHREAD)


def describe(pid: int) -> dict:
    """Who a process is: name, user, command line, create time, status, parent."""
    check_pid(pid)
    with translate(pid):
        proc = psutil.Process(pid)
        with proc.oneshot():
            info = {"pid": pid, "name": proc.name(), "create_time": proc.create_time()}
            info.update(status=proc.status(), ppid=proc.ppid())
            info["user"] = _safe(proc.username)
            info["cmdline"] = " ".join(_safe(proc.cmdline) or [])
    return info


def _safe(getter):
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess, KeyError):
        return None


def list_processes(query: str = "", limit: int = 50) -> list[dict]:
    """User-space processes sorted by RSS, descending; ``query`` matches name, cmdline or pid."""
    query = query.strip().lower()
    found = []
    for proc in psutil.process_iter(["pid", "name", "username", "memory_info", "cmdline"]):
        info = proc.info
        mem = info["memory_info"]
        if mem is None or mem.rss == 0:  # kernel threads, zombies, denied
            continue
        cmdline = " ".join(info["cmdline"] or [])
        pid, name = info["pid"], info["name"]
        if query in (name or "").lower() or query in cmdline.lower() or query == str(pid):
            user = info["username"]
            found.append(
                {"pid": pid, "name": name, "user": user, "rss": mem.rss, "cmdline": cmdline}
            )
    found.sort(key=lambda p: p["rss"], reverse=True)
    return found[:limit]


def parent_map() -> dict[int, int]:
    """The parent of every process, from one pass over /proc/*/stat."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            parents[int(name)] = int(_stat_fields(name, 2)[1])
        except OSError:  # exited while we looked
            continue
    return parents


def descendants(pid: int, parents: dict[int, int] | None = None) -> list[int]:
    """PIDs of all descendants of ``pid`` (empty if it has gone). Pass ``parents`` (from
    :func:`parent_map`) to answer for many processes from one pass over /proc."""
    if parents is None:
        parents = parent_map()
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, ()))
    return found
