"""One sampled series: a process, or a process tree's total (its members are targets of their
own, see trees.py): who holds it, its history, and how its figures are read (the sampler
decides when)."""

from __future__ import annotations

import time
from typing import Any

from . import memory
from .history import History

TREE_OWNER = "tree:"  # owner names of a tree's members start with it ("tree:<pid>#<n>")


class Target:
    """A process (``children`` False) or a process tree's total (``children`` True) that the
    sampler reads.

    Owners (``"cli"``, ``"run:<id>"``, a tree it is a member of) keep it sampled; sockets
    (Socket.IO session ids) also receive its batches, and so do the sockets of the trees it is
    a member of (``recipients``). Its samples go to the sampler's sinks whoever holds it. The
    sampler's lock guards the holders, ``pending``, ``latest`` and ``extra``; the reader is
    used by the sampling thread only.
    """

    def __init__(self, key: memory.ProcessKey, children: bool, process: dict, capacity: int):
        self.key = key
        self.pid = key.pid  # an attribute, not a property: read several times a sample
        self.children = children
        self.process = process
        self.owners: set[str] = set()
        self.sockets: set[str] = set()
        self.history = History(capacity)
        self.pending: list[dict] = []  # samples not yet flushed (to the sockets and sinks)
        self.latest: dict | None = None
        self.extra: dict = {}  # language-heap figures reported by the process, for the next sample
        # A tree's total reads no process itself: its members do (trees.Tree).
        self.reader = None if children else memory.StatmReader(key.pid)
        self.tree: Any = None  # trees.Tree, for a tree's total
        self.trees: list[Target] = []  # the trees' totals this process is a member of
        self.detail_error: str | None = None  # why its detail figures cannot be read
        self.slot = 0  # the tick (modulo the detail period) of its detail read
        self.exited_at: float | None = None
        self.idle_since: float | None = time.monotonic()  # until its first holder arrives

    @property
    def held(self) -> bool:
        return bool(self.owners or self.sockets)

    @property
    def counted(self) -> bool:
        """Held for itself, not only as a member of a tree: it counts against the sampler's
        limit (a tree counts once, however many members it has)."""
        return bool(self.sockets) or any(not o.startswith(TREE_OWNER) for o in self.owners)

    @property
    def recipients(self) -> set[str]:
        """The sockets sent its batches and exit notice: its own and its trees' viewers."""
        if not self.trees:
            return self.sockets
        found = set(self.sockets)
        for tree in list(self.trees):
            found |= tree.sockets
        return found

    @property
    def readers(self) -> dict[int, Any]:
        """Member pid -> its statm reader (every member of a tree, the process itself
        otherwise): which processes a series covers now."""
        if self.tree is not None:
            return self.tree.readers()
        return {} if self.reader is None else {self.pid: self.reader}

    def describe(self) -> dict:
        return {**self.process, "exited": self.exited_at is not None, "exited_at": self.exited_at}

    def read_fast(self) -> dict:
        """The statm figures; raises :class:`errors.ProcessGone` once the process has exited."""
        return self.reader.read()

    def read_detail(self) -> dict:
        """USS/PSS/swap/anon (smaps_rollup): milliseconds, so the sampler reads it seldom."""
        return memory.read_detail(self.pid)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
