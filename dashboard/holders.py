"""Who holds what the sampler samples: its table of targets, their holders (owners and
sockets), the limits (per viewer, overall), and a tree's members, which the tree holds.

:class:`Holders` is the sampler's base: every method here may be called from any thread, under
its ``_lock``; the loop (sampler.py) reads and sums what is held.
"""

from __future__ import annotations

import threading
import time

from . import errors, memory
from .target import Target
from .trees import Tree


class Holders:
    """The targets held, keyed by ``(pid, children)``, and the ways to hold and release them."""

    def __init__(self, capacity: int, detail_every: int, max_targets: int, max_members: int):
        self.capacity = capacity
        self.detail_every = detail_every
        self.max_targets = max_targets
        self.max_members = max_members
        self._targets: dict[tuple[int, bool], Target] = {}
        # Sockets that draw no detail figure (they said so; see Sampler.draws_detail).
        self._no_detail: set[str] = set()
        self._lock = threading.Lock()

    # -- holders -----------------------------------------------------------------------------

    def watch(self, pid: int, children: bool, sid: str, *, limit: int | None = None) -> Target:
        """Socket ``sid`` watches ``pid`` (and its tree when ``children``: the total and every
        member) and receives its batches; raises memdash errors, :class:`errors.TooManyWatches`
        when ``sid`` already watches ``limit`` other targets."""
        return self._hold(pid, children, sid, socket=True, limit=limit)

    def keep(self, pid: int, children: bool, owner: str) -> Target:
        """Keep ``pid`` (and its tree when ``children``) sampled on behalf of ``owner``
        (``"cli"``, ``"run:<id>"``); nobody receives its batches. Raises memdash errors."""
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
            slot = self._slot()
        # A new target (or the PID was reused). Check access to the detail figures now, so a
        # process we cannot fully read is refused with a clear error instead of half-plotted.
        memory.read_detail(pid)
        fresh = Target(key, children, memory.describe(pid), self.capacity)
        fresh.slot = slot
        if children:  # its members before its first sample (nobody else sees it yet)
            fresh.tree = Tree(pid, self.max_members)
            self._grow(fresh, memory.parent_map())
        with self._lock:  # the limits are applied under the same lock as the attach: no race
            target = self._live(key, children)
            try:
                if socket:
                    self._check_limit(name, target, limit)
                if target is None:
                    self._check_room(pid, children, evict=True)
            except errors.TooMany:
                self._drop(fresh)
                raise
            if target is not None:  # another holder won the race
                self._drop(fresh)
            else:
                old = self._targets.get((pid, children))
                if old is not None:  # the PID was reused
                    self._drop(old)
                target = self._targets[(pid, children)] = fresh
            return self._attach(target, name, socket)

    def _grow(self, total: Target, parents: dict[int, int]) -> None:
        """Make the tree's new descendants members: targets of their own (shared with anyone
        who holds them already), read in the tree's tick; past the cap, summed only."""
        tree = total.tree
        for pid in tree.wanted(parents):
            if tree.full():
                tree.add_extra(pid)
                continue
            try:
                key, process = memory.identify(pid), memory.describe(pid)
            except errors.MemdashError:
                continue  # exited already, or a kernel thread
            with self._lock:
                member = self._live(key, False)
                if member is None:
                    try:
                        member = Target(key, False, process, self.capacity)
                    except errors.MemdashError:
                        continue
                    old = self._targets.get((pid, False))
                    if old is not None:  # the PID was reused
                        self._drop(old)
                    member.slot = total.slot
                    self._targets[(pid, False)] = member
                self._attach(member, tree.owner, False)
                member.trees.append(total)
            tree.add(member)

    def _drop(self, target: Target) -> None:
        """Stop sampling ``target`` (under the lock); a tree releases its members."""
        if self._targets.get((target.pid, target.children)) is target:
            del self._targets[(target.pid, target.children)]
        if target.tree is not None:
            for member in target.tree.close():
                if target in member.trees:
                    member.trees.remove(target)
                self._leave(member, target.tree.owner)
        target.close()

    def _check_room(self, pid: int, children: bool, *, evict: bool) -> None:
        """Make sure one more target fits in ``max_targets``: targets nobody holds (lingering,
        or exited) give up their place, the longest idle first; else TooManyTargets."""
        others = [
            t
            for k, t in self._targets.items()
            if k != (pid, children) and (t.counted or not t.held)
        ]
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
                self._drop(target)

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
            self._no_detail.discard(name)
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
        """The newest sample of a target (a tree's total when ``children``), or None."""
        with self._lock:
            target = self._targets.get((pid, children))
            return target.latest if target is not None else None

    def add_extra(self, pid: int, fields: dict) -> None:
        """Attach figures a process reported about itself (language heap) to its next sample."""
        with self._lock:
            for target in self._targets.values():
                if target.key.pid == pid and target.exited_at is None:
                    target.extra.update(fields)


def group_by_audience(
    by_audience: dict[frozenset[str], list[dict]],
) -> list[tuple[list[dict], list[str]]]:
    """``{audience: items}`` (an audience: the sockets that receive those items) as one
    (items, sockets) message per set of sockets that receive the same items."""
    if len(by_audience) == 1:  # everyone receives the same
        [(audience, batches)] = by_audience.items()
        return [(batches, sorted(audience))]
    memberships: dict[str, list[frozenset[str]]] = {}
    for audience in by_audience:
        for sid in audience:
            memberships.setdefault(sid, []).append(audience)
    groups: dict[tuple[int, ...], tuple[list[frozenset[str]], list[str]]] = {}
    for sid, audiences in memberships.items():
        groups.setdefault(tuple(map(id, audiences)), (audiences, []))[1].append(sid)
    return [
        ([batch for audience in audiences for batch in by_audience[audience]], sids)
        for audiences, sids in groups.values()
    ]
