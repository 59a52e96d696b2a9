"""Reading process and system memory: with dashboard/pids.py (which processes there are,
re-exported here), the only module that touches /proc or psutil.

Fast figures come from ``/proc/PID/statm`` through a descriptor kept open (:class:`StatmReader`):
a ``pread`` costs about a microsecond, and as the descriptor is bound to its process, reading it
after that process exited fails even if the PID was reused meanwhile. Detail figures (USS, PSS,
swap, anon) come from ``/proc/PID/smaps_rollup`` (psutil where there is none) and mappings from
psutil (smaps): milliseconds on a large process, so callers read them at a slower rate.
"""

from __future__ import annotations

import os
import time
from contextlib import closing

import psutil

from . import errors
from .pids import (  # noqa: F401  (re-exported: memory is the OS-reading layer's one name)
    ProcessKey,
    check_pid,
    descendants,
    describe,
    identify,
    list_processes,
    parent_map,
    parse_pid,
    pid_max,
    translate,
)

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


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
        size, resident, shared, text, _lib, data, _dt = map(int, raw.split())
        if not size:
            raise errors.ProcessGone(f"process {self.pid} exited")
        page = PAGE_SIZE
        return {"rss": resident * page, "vms": size * page, "shared": shared * page,
                "text": text * page, "data": data * page}  # fmt: skip

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


# The fast figures (StatmReader: in every sample) and the detail figures, read from
# smaps_rollup (~0.5 ms a read, against ~10 µs for statm).
STATM_FIELDS = ("rss", "vms", "shared", "text", "data")
DETAIL_FIELDS = ("uss", "pss", "swap", "anon")
# Every figure a sample may carry, in wire names: its time, then the above, then a language
# heap's (reporters) and a tree's member count.
SAMPLE_FIELDS = ("t", *STATM_FIELDS, *DETAIL_FIELDS, "heap_used", "heap_total", "external")
SAMPLE_FIELDS += ("children",)

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
