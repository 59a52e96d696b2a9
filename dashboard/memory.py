"""Reading process and system memory: the only module that touches /proc or psutil.

A process is identified by :class:`ProcessKey` (PID *and* create time), so a PID that is
reused by a new process is never mixed into the old one's series.

Fast figures come from ``/proc/PID/statm`` through a descriptor kept open (:class:`StatmReader`):
a ``pread`` costs about a microsecond, and as the descriptor is bound to its process, reading it
after that process exited fails even if the PID was reused meanwhile. Detail figures (USS, PSS,
swap, anon) come from ``/proc/PID/smaps_rollup`` (psutil where there is none) and mappings from
psutil (smaps): milliseconds on a large process, so callers read them at a slower rate.
OS errors become memdash errors in :func:`translate`.
"""

from __future__ import annotations

import os
import time
from contextlib import closing, contextmanager
from typing import Iterator, NamedTuple

import psutil

from . import errors

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
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


# -- fast figures --------------------------------------------------------------------------


class StatmReader:
    """Reads one process's ``/proc/PID/statm`` through a descriptor kept open.

    ``read()`` raises :class:`errors.ProcessGone` once the process has exited (a zombie reads
    as all zeros and counts as exited), including when its PID now belongs to another process.
    """

    __slots__ = ("pid", "_fd")

    def __init__(self, pid: int):
        self.pid = pid
        self._fd = -1
        with translate(pid):
            self._fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> dict:
        # Not through translate(): on this hot path a context manager would double the cost,
        # and any error here means the same thing (the descriptor's process has gone).
        try:
            raw = os.pread(self._fd, 128, 0)
        except OSError as e:
            raise errors.ProcessGone(f"process {self.pid} exited") from e
        if raw.startswith(b"0 "):
            raise errors.ProcessGone(f"process {self.pid} exited")
        size, resident, shared, text, _lib, data, _dt = raw.split()
        return {
            "rss": int(resident) * PAGE_SIZE,
            "vms": int(size) * PAGE_SIZE,
            "shared": int(shared) * PAGE_SIZE,
            "text": int(text) * PAGE_SIZE,
            "data": int(data) * PAGE_SIZE,
        }

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()


def read_fast(pid: int) -> dict:
    """One-off read of the fast figures (rss, vms, shared, text, data) in bytes."""
    with closing(StatmReader(pid)) as reader:
        return reader.read()


# -- detail figures ------------------------------------------------------------------------


# A template, not a constant path, so that tests can point it at a missing file.
ROLLUP_PATH = "/proc/{pid}/smaps_rollup"

# smaps_rollup line -> detail figure. USS is every private page; hugetlbfs pages are in
# neither Rss/Pss nor Private_Clean/Dirty (kernel's Documentation/filesystems/proc.rst), so
# Private_Hugetlb is added to it, as psutil does.
_ROLLUP_FIELDS = {
    b"Private_Clean:": "uss",
    b"Private_Dirty:": "uss",
    b"Private_Hugetlb:": "uss",
    b"Pss:": "pss",
    b"Swap:": "swap",
    b"Anonymous:": "anon",
}


def read_detail(pid: int) -> dict:
    """USS, PSS, swap and anonymous memory ("heap + anonymous"), in bytes."""
    with translate(pid):
        try:
            with open(ROLLUP_PATH.format(pid=pid), "rb") as f:
                raw = f.read()
        except (FileNotFoundError, ProcessLookupError):
            # No smaps_rollup (Linux < 4.14), or refused for a live process (it happens,
            # says psutil): psutil sums smaps instead. If the process is gone, it says so.
            m = psutil.Process(pid).memory_full_info()
            # statm: resident = anon + file + shmem, and shared = file + shmem.
            return {"uss": m.uss, "pss": m.pss, "swap": m.swap, "anon": m.rss - m.shared}
    if not raw:
        # Reading a zombie or a kernel thread gives nothing.
        raise errors.ProcessGone(f"process {pid} has no memory map (exited?)")
    values = dict.fromkeys(("uss", "pss", "swap", "anon"), 0)
    for line in raw.splitlines()[1:]:
        parts = line.split()
        name = _ROLLUP_FIELDS.get(parts[0]) if parts else None
        if name:
            values[name] += int(parts[1]) * 1024
    return values


def read_mappings(pid: int) -> list[dict]:
    """Every mapping of ``pid``: {"address", "name", "kind", "rss"}, from psutil (smaps)."""
    with translate(pid):
        maps = psutil.Process(pid).memory_maps(grouped=False)
    found = []
    for m in maps:
        name = "" if m.path == "[anon]" else m.path  # psutil's name for a nameless mapping
        found.append({"address": m.addr, "name": name, "kind": _kind(name), "rss": m.rss})
    return found


def _kind(name: str) -> str:
    if name == "[heap]":
        return "heap"
    if name.startswith("[stack"):
        return "stack"
    # Python's mmap(-1, n) is a shared anonymous mapping: "/dev/zero (deleted)" in smaps.
    if name == "" or name.startswith(("[anon", "/dev/zero", "/memfd:")):
        return "anonymous"
    if name.startswith("/"):
        return "file"
    return "other"


# -- system --------------------------------------------------------------------------------


def system() -> dict:
    """System memory: total, available, used, percent, swap total and used, in bytes."""
    vm = psutil.virtual_memory()
    sw = psutil.swap_memory()
    return {
        "t": time.time(),
        "total": vm.total,
        "available": vm.available,
        "used": vm.total - vm.available,
        "percent": vm.percent,
        "swap_total": sw.total,
        "swap_used": sw.used,
    }
