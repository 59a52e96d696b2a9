"""One sampled series, a process or a process and its descendants summed: who holds it, its
history, and how its figures are read (the sampler decides when)."""

from __future__ import annotations

import time

from . import errors, memory
from .history import History


class Target:
    """A process (and, when ``children``, its descendants) the sampler reads.

    Owners (``"cli"``, ``"run:<id>"``) keep it sampled; sockets (Socket.IO session ids) also
    receive its batches. Its samples go to the sampler's sinks whoever holds it. The sampler's
    lock guards the holders, ``pending``, ``latest`` and ``extra``; the readers are used by the
    sampling thread only.
    """

    def __init__(self, key: memory.ProcessKey, children: bool, process: dict, capacity: int):
        self.key = key
        self.children = children
        self.process = process
        self.owners: set[str] = set()
        self.sockets: set[str] = set()
        self.history = History(capacity)
        self.pending: list[dict] = []  # samples not yet flushed (to the sockets and sinks)
        self.latest: dict | None = None
        self.extra: dict = {}  # language-heap figures reported by the process, for the next sample
        self.readers = {key.pid: memory.StatmReader(key.pid)}
        self.slot = 0  # the tick (modulo the detail period) of its detail read
        self.exited_at: float | None = None
        self.idle_since: float | None = time.monotonic()  # until its first holder arrives

    @property
    def pid(self) -> int:
        return self.key.pid

    @property
    def held(self) -> bool:
        return bool(self.owners or self.sockets)

    def describe(self) -> dict:
        return {**self.process, "exited": self.exited_at is not None, "exited_at": self.exited_at}

    def read_fast(self) -> dict:
        """The statm figures, summed over the known descendants (with their count) when
        ``children``; raises :class:`errors.ProcessGone` once the process itself has exited."""
        sample = self.readers[self.pid].read()
        if not self.children:
            return sample
        gone = []
        for pid, reader in self.readers.items():
            if pid == self.pid:
                continue
            try:
                child = reader.read()
            except errors.ProcessGone:
                gone.append(pid)
                continue
            for name, value in child.items():
                sample[name] += value
        for pid in gone:
            self.readers.pop(pid).close()
        sample["children"] = len(self.readers) - 1
        return sample

    def refresh_children(self, parents: dict[int, int]) -> None:
        """Open readers for descendants born since the last refresh (``parents`` from
        :func:`memory.parent_map`)."""
        for pid in memory.descendants(self.pid, parents):
            if pid not in self.readers:
                try:
                    self.readers[pid] = memory.StatmReader(pid)
                except errors.MemdashError:
                    pass  # exited already, or not ours to read

    def read_detail(self) -> dict:
        """USS/PSS/swap/anon of the process, plus its known descendants'."""
        total = memory.read_detail(self.pid)
        for pid in list(self.readers):
            if pid == self.pid:
                continue
            try:
                child = memory.read_detail(pid)
            except errors.MemdashError:
                continue
            for name, value in child.items():
                total[name] += value
        return total

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()
