"""The one background sampling loop, shared by every viewer.

A :class:`Target` is one sampled series: a process, or a process tree's total (trees.py: each
member is a target of its own). **Owners** (``"cli"``, ``"run:<id>"``, a tree) keep a target
sampled; **sockets** (Socket.IO session ids) also receive its batches and exit notice (a tree's
sockets receive its members' too), and the detail figures (USS/PSS/swap/anon, smaps_rollup,
~0.5 ms a read against ~10 µs for statm) are read only while a socket receives them: every
detail period while one of those sockets draws a detail figure (:meth:`Sampler.draws_detail`;
a socket that never says is taken to draw them), every background period otherwise (for the
recording, /metrics and the stats, which show the latest value).

Each ``interval`` the loop finds new tree members (once a detail period per tree), reads the
fast figures of every process, the detail figures of those due (spread over the ticks of the
detail period; a tree's members share its tick, so its total sums one tick's readings), then
sums the trees. At most ``1 / flush_interval`` times a second it flushes: new samples go to
the **sinks** (:class:`Sink`) whoever holds the target, and to the sockets, ONE ``samples``
message per socket, emitted once per group of sockets that receive the same batches
(``emit`` only queues: a slow viewer stalls nobody). Each tick runs inside ``corked()``, so
that what it emits leaves together (the app's Fanout.corked: one write per viewer).

At most ``max_targets`` targets are held for themselves (a tree counts once;
:class:`errors.TooManyTargets`); a target whose last holder left lingers (fast figures only)
for ``linger`` seconds, so a viewer that reconnects gets the gap backfilled.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import threading
import time
from typing import Callable, ContextManager, Protocol

from . import errors, memory
from .holders import Holders, group_by_audience
from .target import Target
from .trees import MAX_MEMBERS

log = logging.getLogger(__name__)
_IS_TOTAL = operator.attrgetter("children")  # a tree's total sums its members' tick

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
        """The target's process exited (``reason`` "exited"; a tree: its last member) or its
        PID went to another process (``"pid reused"``); its last samples were flushed before."""


class Sampler(Holders):
    """Samples every held target on one background thread; ``start()`` once, ``stop()``."""

    def __init__(
        self,
        interval: float = 0.1,
        detail_interval: float = 1.0,
        background_detail_interval: float = 10.0,
        history_seconds: float = 1800.0,
        linger: float = 60.0,
        flush_interval: float = 0.1,
        system_interval: float = 1.0,
        emit: Emit = _no_emit,
        max_targets: int = 256,
        max_members: int = MAX_MEMBERS,
        corked: Callable[[], ContextManager[None]] = contextlib.nullcontext,
    ):
        # Periods in ticks: at 10 Hz each sample is flushed in the tick that read it, and the
        # detail reads of many targets are spread over the ticks of a period (see _slot).
        detail_every = max(1, round(detail_interval / interval))
        capacity = max(1, int(history_seconds / interval))
        super().__init__(capacity, detail_every, max_targets, max_members)
        # In detail periods: a target nobody draws the detail of is read in one period of these.
        self.background_every = max(1, round(background_detail_interval / detail_interval))
        self.interval = interval
        self.linger = linger
        self.flush_every = max(1, round(flush_interval / interval))
        self.system_every = max(1, round(system_interval / interval))
        self.emit = emit
        self.corked = corked  # around each tick: what it emits leaves together (Fanout.corked)
        self._sinks: list[Sink] = []
        self._sink_failed: dict[int, float] = {}  # id(sink) -> when its failure was last logged
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.last_system: dict | None = None

    def add_sink(self, sink: Sink) -> None:
        """``sink`` receives every flush and exit from now on (see :class:`Sink`)."""
        with self._lock:
            self._sinks = [*self._sinks, sink]  # the loop iterates a snapshot

    def draws_detail(self, sid: str, drawn: bool) -> None:
        """Whether socket ``sid`` draws a detail figure now (the page's metric is USS, PSS, swap
        or heap + anon): the targets it receives have theirs read every detail period."""
        with self._lock:
            if drawn:
                self._no_detail.discard(sid)
            else:
                self._no_detail.add(sid)

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
            for target in list(self._targets.values()):
                self._drop(target)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                with self.corked():
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
        """One round: new tree members, every process, then the trees' totals; flush batches
        when due, system memory when due."""
        now, mono = time.time(), time.monotonic()
        self.ticks += 1
        phase = self.ticks % self.detail_every
        parents = None
        for total in self.targets():
            if total.tree is not None and total.exited_at is None and phase == total.slot:
                if parents is None:  # one pass over /proc a tick, for every tree
                    parents = memory.parent_map()
                self._grow(total, parents)
        for target in sorted(self.targets(), key=_IS_TOTAL):  # members before totals
            if not target.held and (
                target.exited_at is not None or mono - target.idle_since > self.linger
            ):
                self._forget(target)
            elif target.exited_at is None:
                self._sample(target, now, phase)
        if self.ticks % self.flush_every == 0:
            self.flush()
        if (self.ticks - 1) % self.system_every == 0:  # from the first tick on
            self.last_system = memory.system()
            self.emit("system", self.last_system, None)

    def _forget(self, target: Target) -> None:
        with self._lock:
            # A holder may have arrived since the loop looked: then it stays.
            if not target.held and self._targets.get((target.pid, target.children)) is target:
                self._drop(target)

    def _sample(self, target: Target, now: float, phase: int) -> None:
        if target.tree is not None:
            # Detail only while a socket receives it; its members read theirs in this tick.
            sample = target.tree.total(now, self._detail_tick(target, phase))
            if sample is None:  # its last member has gone
                self._exited(target, now)
                return
        else:
            try:
                sample = target.read_fast()
            except errors.ProcessGone:
                self._exited(target, now)
                return
            if self._detail_due(target, phase):
                try:
                    sample.update(target.read_detail())
                    target.detail_error = None
                except errors.AccessDenied as e:
                    target.detail_error = e.message  # absent, not zero: another user's
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

    def _detail_due(self, target: Target, phase: int) -> bool:
        """Its detail tick, or that of a tree it is in (whose total sums this tick's detail
        figures)."""
        if phase != target.slot and not target.trees:  # most ticks of most targets
            return False
        return self._detail_tick(target, phase) or any(
            self._detail_tick(tree, phase) for tree in list(target.trees)
        )

    def _detail_tick(self, target: Target, phase: int) -> bool:
        """A socket receives ``target`` and this is its tick of the detail period: of every
        period while one of them draws detail, of one in ``background_every`` otherwise."""
        if phase != target.slot or not target.sockets:
            return False
        if (self.ticks // self.detail_every) % self.background_every == 0:
            return True
        undrawn = self._no_detail
        return any(sid not in undrawn for sid in list(target.sockets))

    def _exited(self, target: Target, now: float) -> None:
        target.exited_at = now
        target.close()
        reused = target.tree is None and _pid_reused(target.key)
        reason = "pid reused" if reused else "exited"
        self.flush()  # the last samples go out before the exit notice
        payload = {"pid": target.pid, "children": target.children, "t": now, "reason": reason}
        with self._lock:
            sockets = sorted(target.recipients)
            sinks = self._sinks
            for total in target.trees:  # it leaves the trees' totals from this tick on
                total.tree.remove(target)
                target.owners.discard(total.tree.owner)
            target.trees = []
        if sockets:
            self.emit("process_exit", payload, sockets)
        for sink in sinks:
            self._call(sink, "exited", target, now, reason)

    def flush(self) -> None:
        """Hand every target's samples since the last flush to the sinks, and send each socket
        ONE ``samples`` message with one ``{pid, children, samples}`` batch per target it
        receives (a viewer of twenty processes still gets about ten messages a second). Sockets
        with the same batches share one message, emitted once to all of them."""
        batches: list[tuple[Target, list[dict]]] = []
        # Who receives a batch (its audience: a set of sockets) -> the batches it receives.
        # Sockets watching the same processes (a room, the usual case) form one audience.
        by_audience: dict[frozenset[str], list[dict]] = {}
        with self._lock:
            for target in self._targets.values():
                if not target.pending:
                    continue
                batches.append((target, target.pending))
                sockets = target.recipients
                if sockets:
                    batch = {"pid": target.pid, "children": target.children}
                    batch["samples"] = target.pending
                    by_audience.setdefault(frozenset(sockets), []).append(batch)
                target.pending = []
            sinks = self._sinks
        for mine, sids in group_by_audience(by_audience):
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
