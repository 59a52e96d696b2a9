"""The one background sampling loop, shared by every viewer.

A :class:`Target` is one watched series: a process, or a process and its descendants summed.
Viewers (Socket.IO session ids, or owners such as a leak-lab run) hold targets; the loop reads
the fast figures of every target each ``interval``, the expensive detail figures every
``detail_interval`` while at least one viewer holds it, appends to the target's history and
hands each viewer one list of batches (one per target it holds) at most ``1 / flush_interval``
times a second. ``emit`` only queues
messages (Flask-SocketIO gives each client its own queue), so a slow viewer cannot stall the
loop or the other viewers.

A target whose last viewer left keeps being sampled (fast figures only) for ``linger``
seconds, so a viewer that reconnects gets the gap backfilled.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Callable

from . import errors, memory
from .history import RingBuffer

log = logging.getLogger(__name__)

# (event, payload, room or viewer, None for everyone); for "samples" the payload is a list of
# batches, one Socket.IO argument each.
Emit = Callable[[str, "dict | list", "str | None"], None]


def _no_emit(event: str, payload: dict, room: str | None) -> None:
    pass


class Target:
    """One watched series and the state the loop keeps for it."""

    def __init__(self, key: memory.ProcessKey, children: bool, process: dict, capacity: int):
        self.key = key
        self.children = children
        self.process = process
        mode = "tree" if children else "self"
        self.room = f"{key.pid}:{key.create_time:.2f}:{mode}"
        self.viewers: set[str] = set()
        self.history = RingBuffer(capacity)
        self.pending: list[dict] = []
        self.extra: dict = {}  # language-heap figures reported by the process, for the next sample
        self.readers = {key.pid: memory.StatmReader(key.pid)}
        self.next_detail = 0.0
        self.exited_at: float | None = None
        self.idle_since: float | None = None

    @property
    def pid(self) -> int:
        return self.key.pid

    def describe(self) -> dict:
        return {**self.process, "exited": self.exited_at is not None, "exited_at": self.exited_at}

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()


class Sampler:
    """Samples every watched target on one background thread; ``start()`` once, ``stop()``."""

    def __init__(
        self,
        interval: float = 0.1,
        detail_interval: float = 1.0,
        history_seconds: float = 1800.0,
        linger: float = 60.0,
        flush_interval: float = 0.1,
        system_interval: float = 1.0,
        emit: Emit = _no_emit,
    ):
        self.interval = interval
        self.detail_interval = detail_interval
        self.linger = linger
        self.capacity = max(1, int(history_seconds / interval))
        # Flush every N ticks, so at 10 Hz each sample is sent in the tick that read it.
        self.flush_every = max(1, round(flush_interval / interval))
        self.system_every = max(1, round(system_interval / interval))
        self.emit = emit
        self._targets: dict[tuple[int, bool], Target] = {}
        self._phases = itertools.count()  # spreads detail reads over the ticks of a second
        self._parents: dict[int, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.last_system: dict | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop if it is not running yet (safe to call from every connect)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="memdash-sampler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            for target in self._targets.values():
                target.close()
            self._targets.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- viewers -----------------------------------------------------------------------------

    def watch(self, pid: int, children: bool, viewer: str) -> Target:
        """Add ``viewer`` to the target for ``pid``, creating it; raises memdash errors."""
        key = memory.identify(pid)
        with self._lock:
            target = self._targets.get((pid, children))
            if target is not None and target.key == key:
                target.viewers.add(viewer)
                target.idle_since = None
                return target
        # A new target (or the PID was reused). Check access to the detail figures now, so a
        # process we cannot fully read is refused with a clear error instead of half-plotted.
        memory.read_detail(pid)
        process = memory.describe(pid)
        fresh = Target(key, children, process, self.capacity)
        # Twenty processes watched at once must not read twenty smaps_rollup files (up to
        # ~5 ms each) in one tick: give each target its own phase within the detail interval.
        phase = (next(self._phases) * self.interval) % self.detail_interval
        fresh.next_detail = time.monotonic() + phase
        with self._lock:
            target = self._targets.get((pid, children))
            if target is not None and target.key == key:  # another viewer won the race
                fresh.close()
            else:
                if target is not None:
                    target.close()
                target = self._targets[(pid, children)] = fresh
            target.viewers.add(viewer)
            target.idle_since = None
        return target

    def unwatch(self, pid: int, children: bool, viewer: str) -> bool:
        with self._lock:
            target = self._targets.get((pid, children))
            if target is None or viewer not in target.viewers:
                return False
            self._leave(target, viewer)
            return True

    def release(self, viewer: str) -> None:
        """Drop ``viewer`` from every target (a viewer disconnected, a run ended)."""
        with self._lock:
            for target in self._targets.values():
                if viewer in target.viewers:
                    self._leave(target, viewer)

    def _leave(self, target: Target, viewer: str) -> None:
        target.viewers.discard(viewer)
        if not target.viewers:
            target.idle_since = time.monotonic()

    def target(self, pid: int, children: bool = False) -> Target | None:
        with self._lock:
            return self._targets.get((pid, children))

    def targets(self) -> list[Target]:
        with self._lock:
            return list(self._targets.values())

    def add_extra(self, pid: int, fields: dict) -> None:
        """Attach figures a process reported about itself (language heap) to its next sample."""
        with self._lock:
            for target in self._targets.values():
                if target.key.pid == pid and target.exited_at is None:
                    target.extra.update(fields)

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # never let one bad read end sampling for everyone
                log.exception("sampler tick failed")
            next_tick += self.interval
            delay = next_tick - time.monotonic()
            if delay < 0:  # fell behind (suspended laptop, overload): skip, don't burst
                next_tick = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def tick(self) -> None:
        """One round: sample every target, flush batches when due, system memory when due."""
        now = time.time()
        mono = time.monotonic()
        self.ticks += 1
        self._parents: dict[int, int] | None = None  # one /proc pass a tick, when needed
        for target in self.targets():
            idle = not target.viewers
            if idle and (target.exited_at is not None or mono - target.idle_since > self.linger):
                self._forget(target)
            elif target.exited_at is None:
                self._sample(target, now, mono)
        if self.ticks % self.flush_every == 0:
            self.flush()
        if (self.ticks - 1) % self.system_every == 0:  # from the first tick on
            self.last_system = memory.system()
            self.emit("system", self.last_system, None)

    def _forget(self, target: Target) -> None:
        with self._lock:
            if self._targets.get((target.pid, target.children)) is target:
                del self._targets[(target.pid, target.children)]
        target.close()

    def _sample(self, target: Target, now: float, mono: float) -> None:
        try:
            sample = target.readers[target.pid].read()
        except errors.ProcessGone:
            self._exited(target, now)
            return
        if target.children:
            self._add_children_fast(target, sample)
        if mono >= target.next_detail:
            target.next_detail += self.detail_interval  # keeps the target's phase
            if target.next_detail < mono:  # fell behind: don't catch up in a burst
                target.next_detail = mono + self.detail_interval
            if target.children:
                self._refresh_children(target)
            if target.viewers:  # the expensive read only while someone watches
                try:
                    sample.update(self._detail(target))
                except errors.MemdashError:
                    pass  # exited between two reads: the next fast read reports it
        sample["t"] = now
        with self._lock:
            if target.extra:
                sample.update(target.extra)
                target.extra = {}
            target.history.append(sample)
            target.pending.append(sample)

    def _add_children_fast(self, target: Target, sample: dict) -> None:
        gone = []
        for pid, reader in target.readers.items():
            if pid == target.pid:
                continue
            try:
                child = reader.read()
            except errors.ProcessGone:
                gone.append(pid)
                continue
            for name, value in child.items():
                sample[name] += value
        for pid in gone:
            target.readers.pop(pid).close()
        sample["children"] = len(target.readers) - 1

    def _refresh_children(self, target: Target) -> None:
        if self._parents is None:
            self._parents = memory.parent_map()
        for pid in memory.descendants(target.pid, self._parents):
            if pid not in target.readers:
                try:
                    target.readers[pid] = memory.StatmReader(pid)
                except errors.MemdashError:
                    pass  # exited already, or not ours to read

    def _detail(self, target: Target) -> dict:
        total = memory.read_detail(target.pid)
        for pid in list(target.readers):
            if pid == target.pid:
                continue
            try:
                child = memory.read_detail(pid)
            except errors.MemdashError:
                continue
            for name, value in child.items():
                total[name] += value
        return total

    def _exited(self, target: Target, now: float) -> None:
        target.exited_at = now
        target.close()
        reused = _pid_reused(target.key)
        reason = "pid reused" if reused else "exited"
        self.flush()  # the last samples go out before the exit notice
        payload = {"pid": target.pid, "children": target.children, "t": now, "reason": reason}
        self.emit("process_exit", payload, target.room)

    def flush(self) -> None:
        """Send what each viewer's targets gathered since the last flush: ONE ``samples``
        message per viewer, with one ``{pid, children, samples}`` batch per target, so a
        viewer of twenty processes still gets about ten messages a second."""
        per_viewer: dict[str, list[dict]] = {}
        with self._lock:
            for target in self._targets.values():
                if not target.pending:
                    continue
                batch = {"pid": target.pid, "children": target.children, "samples": target.pending}
                target.pending = []
                for viewer in target.viewers:
                    per_viewer.setdefault(viewer, []).append(batch)
        for viewer, batches in per_viewer.items():
            self.emit("samples", batches, viewer)


def _pid_reused(key: memory.ProcessKey) -> bool:
    try:
        return memory.identify(key.pid) != key
    except errors.MemdashError:
        return False
