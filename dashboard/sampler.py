"""The one background sampling loop, shared by every viewer.

A :class:`Target` is one sampled series: a process, or a process and its descendants summed.
Two kinds of holder keep a target sampled:

- **owners** (``"cli"`` for ``--pid``, ``"run:<id>"`` for a leak-lab run) keep it recorded;
- **sockets** (Socket.IO session ids) also receive its batches and its exit notice, and the
  expensive detail figures (USS/PSS/swap from smaps_rollup) are read only while at least one
  socket watches.

The loop reads the fast figures of every target each ``interval`` and the detail figures of a
watched target every ``detail_interval``. At most ``1 / flush_interval`` times a second it
flushes: every target's new samples go to the **sinks** (:class:`Sink`: a growth tracker, a
recorder) whoever holds the target, and to the sockets, ONE ``samples`` message per socket.
Sockets that watch the same targets get the same message: they are sent it in one ``emit``
to the list of them, so it is encoded once per group, not once per viewer. ``emit`` only
queues (each client has its own queue), so a slow viewer cannot stall the loop or the others.

At most ``max_targets`` targets are sampled at once (:class:`errors.TooManyTargets`); a target
whose last holder left keeps being sampled (fast figures only) for ``linger`` seconds, so a
viewer that reconnects gets the gap backfilled, unless the limit needs its place.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Protocol

from . import errors, memory
from .target import Target

log = logging.getLogger(__name__)

# (event, payload, to): ``to`` is a socket id, a list of them, or None for every socket; for
# "samples" the payload is a list of batches, one Socket.IO argument each.
Emit = Callable[[str, "dict | list", "str | list[str] | None"], None]


def _no_emit(event: str, payload: dict | list, to: str | list[str] | None) -> None:
    pass


class Sink(Protocol):
    """Receives every target's samples, on the sampler thread: keep it quick (hand heavy work
    to a thread of your own). An exception is logged and does not stop sampling."""

    def flushed(self, batches: list[tuple[Target, list[dict]]]) -> None:
        """The samples read since the last flush, per target that has any (oldest first)."""

    def exited(self, target: Target, t: float, reason: str) -> None:
        """The target's process exited (``reason`` "exited") or its PID went to another
        process (``"pid reused"``); its last samples were flushed before."""


class Sampler:
    """Samples every held target on one background thread; ``start()`` once, ``stop()``."""

    def __init__(
        self,
        interval: float = 0.1,
        detail_interval: float = 1.0,
        history_seconds: float = 1800.0,
        linger: float = 60.0,
        flush_interval: float = 0.1,
        system_interval: float = 1.0,
        emit: Emit = _no_emit,
        max_targets: int = 256,
    ):
        self.interval = interval
        self.linger = linger
        self.capacity = max(1, int(history_seconds / interval))
        self.max_targets = max_targets
        # Periods in ticks: at 10 Hz each sample is flushed in the tick that read it, and the
        # detail reads of many targets are spread over the ticks of a period (see _slot).
        self.detail_every = max(1, round(detail_interval / interval))
        self.flush_every = max(1, round(flush_interval / interval))
        self.system_every = max(1, round(system_interval / interval))
        self.emit = emit
        self._sinks: list[Sink] = []
        self._sink_failed: dict[int, float] = {}  # id(sink) -> when its failure was last logged
        self._targets: dict[tuple[int, bool], Target] = {}
        self._parents: dict[int, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.last_system: dict | None = None

    def add_sink(self, sink: Sink) -> None:
        """``sink`` receives every flush and exit from now on (see :class:`Sink`)."""
        with self._lock:
            self._sinks = [*self._sinks, sink]  # the loop iterates a snapshot

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

    # -- holders -----------------------------------------------------------------------------

    def watch(self, pid: int, children: bool, sid: str, *, limit: int | None = None) -> Target:
        """Socket ``sid`` watches ``pid`` (and receives its batches); raises memdash errors,
        :class:`errors.TooManyWatches` when ``sid`` already watches ``limit`` other targets."""
        return self._hold(pid, children, sid, socket=True, limit=limit)

    def keep(self, pid: int, children: bool, owner: str) -> Target:
        """Keep ``pid`` sampled on behalf of ``owner`` (``"cli"``, ``"run:<id>"``); nobody
        receives its batches. Raises memdash errors."""
        return self._hold(pid, children, owner, socket=False)

    def _hold(
        self, pid: int, children: bool, name: str, *, socket: bool, limit: int | None = None
    ) -> Target:
        key = memory.identify(pid)
        with self._lock:  # early, to spare the reads below; checked again when attaching
            target = self._live(key, children)
            if socket:
                self._check_limit(name, target, limit)
            if target is not None:
                return self._attach(target, name, socket)
            self._check_room(pid, children, evict=False)
        # A new target (or the PID was reused). Check access to the detail figures now, so a
        # process we cannot fully read is refused with a clear error instead of half-plotted.
        memory.read_detail(pid)
        fresh = Target(key, children, memory.describe(pid), self.capacity)
        with self._lock:  # the limits are applied under the same lock as the attach: no race
            target = self._live(key, children)
            try:
                if socket:
                    self._check_limit(name, target, limit)
                if target is None:
                    self._check_room(pid, children, evict=True)
            except errors.TooMany:
                fresh.close()
                raise
            if target is not None:  # another holder won the race
                fresh.close()
            else:
                old = self._targets.get((pid, children))
                if old is not None:  # the PID was reused
                    old.close()
                fresh.slot = self._slot()
                target = self._targets[(pid, children)] = fresh
            return self._attach(target, name, socket)

    def _check_room(self, pid: int, children: bool, *, evict: bool) -> None:
        """Make sure one more target fits in ``max_targets``: targets nobody holds (lingering,
        or exited) give up their place, the longest idle first; else TooManyTargets."""
        others = [t for k, t in self._targets.items() if k != (pid, children)]
        if len(others) < self.max_targets:
            return
        idle = [t for t in others if not t.held]
        if len(others) - len(idle) >= self.max_targets:
            raise errors.TooManyTargets(
                f"memdash already samples {self.max_targets} processes, its limit; "
                "unwatch some (here or in another tab) first"
            )
        if evict:
            idle.sort(key=lambda t: t.idle_since or 0.0)
            for target in idle[: len(others) - self.max_targets + 1]:
                del self._targets[(target.pid, target.children)]
                target.close()

    def _live(self, key: memory.ProcessKey, children: bool) -> Target | None:
        target = self._targets.get((key.pid, children))
        return target if target is not None and target.key == key else None

    def _check_limit(self, sid: str, target: Target | None, limit: int | None) -> None:
        if limit is None or (target is not None and sid in target.sockets):
            return
        watching = sum(1 for t in self._targets.values() if sid in t.sockets)
        if watching >= limit:
            raise errors.TooManyWatches(
                f"a viewer may watch at most {limit} processes; unwatch one first"
            )

    def _slot(self) -> int:
        """The least used tick of the detail period: twenty processes watched at once must not
        read twenty smaps_rollup files (up to ~5 ms each) in one tick."""
        used = [0] * self.detail_every
        for target in self._targets.values():
            used[target.slot] += 1
        return used.index(min(used))

    @staticmethod
    def _attach(target: Target, name: str, socket: bool) -> Target:
        (target.sockets if socket else target.owners).add(name)
        target.idle_since = None
        return target

    def unwatch(self, pid: int, children: bool, sid: str) -> bool:
        """Socket ``sid`` stops watching; False if it was not watching."""
        with self._lock:
            target = self._targets.get((pid, children))
            if target is None or sid not in target.sockets:
                return False
            self._leave(target, sid)
            return True

    def release(self, name: str) -> None:
        """Drop a socket or an owner from every target (a viewer disconnected, a run ended)."""
        with self._lock:
            for target in self._targets.values():
                self._leave(target, name)

    @staticmethod
    def _leave(target: Target, name: str) -> None:
        if name in target.sockets or name in target.owners:
            target.sockets.discard(name)
            target.owners.discard(name)
            if not target.held:
                target.idle_since = time.monotonic()

    def target(self, pid: int, children: bool = False) -> Target | None:
        with self._lock:
            return self._targets.get((pid, children))

    def targets(self) -> list[Target]:
        with self._lock:
            return list(self._targets.values())

    def latest(self, pid: int, children: bool = False) -> dict | None:
        """The newest sample of a target (sums over descendants when ``children``), or None."""
        with self._lock:
            target = self._targets.get((pid, children))
            return target.latest if target is not None else None

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
        self._parents = None
        for target in self.targets():
            if not target.held and (
                target.exited_at is not None or mono - target.idle_since > self.linger
            ):
                self._forget(target)
            elif target.exited_at is None:
                self._sample(target, now)
        if self.ticks % self.flush_every == 0:
            self.flush()
        if (self.ticks - 1) % self.system_every == 0:  # from the first tick on
            self.last_system = memory.system()
            self.emit("system", self.last_system, None)

    def _forget(self, target: Target) -> None:
        with self._lock:
            # A holder may have arrived since the loop looked: then it stays.
            if target.held or self._targets.get((target.pid, target.children)) is not target:
                return
            del self._targets[(target.pid, target.children)]
        target.close()

    def _sample(self, target: Target, now: float) -> None:
        try:
            sample = target.read_fast()
        except errors.ProcessGone:
            self._exited(target, now)
            return
        if self.ticks % self.detail_every == target.slot:
            if target.children:
                if self._parents is None:  # one pass over /proc a tick, for every target
                    self._parents = memory.parent_map()
                target.refresh_children(self._parents)
            if target.sockets:  # the expensive read only while a viewer receives it
                try:
                    sample.update(target.read_detail())
                except errors.MemdashError:
                    pass  # exited between two reads: the next fast read reports it
        sample["t"] = now
        with self._lock:
            if target.extra:
                sample.update(target.extra)
                target.extra = {}
            target.history.append(sample)
            target.latest = sample
            target.pending.append(sample)  # for the sinks, and the sockets

    def _exited(self, target: Target, now: float) -> None:
        target.exited_at = now
        target.close()
        reused = _pid_reused(target.key)
        reason = "pid reused" if reused else "exited"
        self.flush()  # the last samples go out before the exit notice
        payload = {"pid": target.pid, "children": target.children, "t": now, "reason": reason}
        with self._lock:
            sockets = sorted(target.sockets)
            sinks = self._sinks
        if sockets:
            self.emit("process_exit", payload, sockets)
        for sink in sinks:
            self._call(sink, "exited", target, now, reason)

    def flush(self) -> None:
        """Hand every target's samples since the last flush to the sinks, and send each socket
        ONE ``samples`` message with one ``{pid, children, samples}`` batch per target it
        watches (a viewer of twenty processes still gets about ten messages a second). Sockets
        with the same targets share one message, emitted once to all of them."""
        batches: list[tuple[Target, list[dict]]] = []
        groups: dict[tuple[int, ...], tuple[list[dict], list[str]]] = {}
        with self._lock:
            per_socket: dict[str, list[dict]] = {}
            for target in self._targets.values():
                if not target.pending:
                    continue
                batches.append((target, target.pending))
                if target.sockets:
                    batch = {"pid": target.pid, "children": target.children}
                    batch["samples"] = target.pending
                    for sid in target.sockets:
                        per_socket.setdefault(sid, []).append(batch)
                target.pending = []
            sinks = self._sinks
        for sid, mine in per_socket.items():
            # Batches are built once per target per flush: their identities name the group.
            key = tuple(map(id, mine))
            groups.setdefault(key, (mine, []))[1].append(sid)
        for mine, sids in groups.values():
            self.emit("samples", mine, sids)
        if batches:
            for sink in sinks:
                self._call(sink, "flushed", batches)

    def _call(self, sink: Sink, method: str, *args: object) -> None:
        """A sink's failure is its own: logged (its traceback once a minute), never raised."""
        try:
            getattr(sink, method)(*args)
        except Exception:
            now = time.monotonic()
            if now - self._sink_failed.get(id(sink), -60.0) >= 60.0:
                self._sink_failed[id(sink)] = now
                log.exception("sampler sink %r failed in %s (logged once a minute)", sink, method)


def _pid_reused(key: memory.ProcessKey) -> bool:
    try:
        return memory.identify(key.pid) != key
    except errors.MemdashError:
        return False
