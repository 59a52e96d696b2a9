"""A process tree watched as one thing: its members and their correct total.

Every member (the root and each descendant) is a :class:`Target` of its own, held by the tree
(owner ``"tree:<pid>#<n>"``): its own history, exit notice and growth. The tree's total is the
``(pid, children=True)`` target; each tick it is the sum of the same tick's readings of the
members read then (one that exited mid-read is left out of that sample, not half-counted).
uss/pss/swap/anon of a total are the sum of the same members' detail figures, or absent when
one of them has none (denied, or exited between the reads): never a sum of other members
than the fast figures'. The sampler finds new descendants once a detail period (of the root
while it lives, and of every member: a child re-parented to init after the root exited stays
a member until it exits). Past ``max_members`` drawn members, more are summed into the total
(fast figures only; the total then has no uss/pss) but get no series of their own.

``members_at(t)`` tells the growth estimator which members a sample summed: a change is a
step, not growth. ``summary()`` is what viewers are told: the members, and the ranking by
growth rate (the ack of a watch, the ``tree`` event, ``GET /api/processes/<pid>/tree``).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from typing import Callable

from . import errors, memory
from .target import TREE_OWNER, Target

MAX_MEMBERS = 256  # drawn members of one tree; more are summed, not drawn
FAST = memory.STATM_FIELDS
DETAIL = memory.DETAIL_FIELDS
_serial = itertools.count(1)

GrowthOf = Callable[[int, bool], "dict | None"]


class Tree:
    """The membership of one tree's total. Changed on the sampler thread (and by the thread
    that creates the tree, before anyone else sees it); read from any thread via snapshots."""

    def __init__(self, root: int, max_members: int = MAX_MEMBERS):
        self.root = root
        self.max_members = max_members
        self.owner = f"{TREE_OWNER}{root}#{next(_serial)}"
        self.members: dict[int, Target] = {}
        self.extra: dict[int, memory.StatmReader] = {}  # summed, not drawn
        self.root_exited = False
        self.version = 0  # bumped on every change of membership
        self._lock = threading.Lock()
        self._epochs: list[tuple[float, frozenset[int]]] = []  # (from t, pids summed)

    # -- membership --------------------------------------------------------------------------

    def wanted(self, parents: dict[int, int]) -> list[int]:
        """Descendants of the root (while it lives) and of every member not yet in the tree."""
        children: dict[int, list[int]] = {}
        for child, parent in parents.items():
            children.setdefault(parent, []).append(child)
        with self._lock:
            known = set(self.members) | set(self.extra)
        todo = list(known) if self.root_exited else [self.root, *known]
        seen = set(todo)
        found = [] if self.root_exited or self.root in known else [self.root]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
                    if child not in known:
                        found.append(child)
        return found  # the root first: a tree over its cap still draws its root

    def full(self) -> bool:
        return len(self.members) >= self.max_members

    def add(self, member: Target) -> None:
        with self._lock:
            self.members[member.pid] = member
            self.version += 1

    def add_extra(self, pid: int) -> None:
        try:
            reader = memory.StatmReader(pid)
        except errors.MemdashError:
            return  # gone already
        with self._lock:
            self.extra[pid] = reader
            self.version += 1

    def remove(self, member: Target) -> None:
        """A member exited: it leaves the tree (its own series keeps its exit notice)."""
        with self._lock:
            if self.members.get(member.pid) is member:
                del self.members[member.pid]
                self.version += 1
                if member.pid == self.root:
                    self.root_exited = True

    def snapshot(self) -> list[Target]:
        with self._lock:
            return list(self.members.values())

    def readers(self) -> dict[int, object]:
        with self._lock:
            return {**{p: m.reader for p, m in self.members.items()}, **self.extra}

    def close(self) -> list[Target]:
        """Forget every member (returned, for the sampler to release)."""
        with self._lock:
            members = list(self.members.values())
            self.members.clear()
            for reader in self.extra.values():
                reader.close()
            self.extra.clear()
        return members

    # -- the total ---------------------------------------------------------------------------

    def total(self, now: float, detail: bool) -> dict | None:
        """The sum of the members' samples taken at ``now`` (this tick) and of the extra
        processes read now; ``detail``: add their uss/pss/swap/anon if every one has them.
        None when nobody is left: the tree has exited."""
        sample = dict.fromkeys(FAST, 0)
        details = dict.fromkeys(DETAIL, 0)
        summed = []
        for pid, member in list(self.members.items()):
            read = member.latest
            if read is None or read["t"] != now:  # exited, or not read this tick
                continue
            for name in FAST:
                sample[name] += read[name]
            if detail:
                if "uss" in read:
                    for name in DETAIL:
                        details[name] += read[name]
                else:
                    detail = False
            summed.append(pid)
        gone = []
        for pid, reader in list(self.extra.items()):
            try:
                read = reader.read()
            except errors.ProcessGone:
                gone.append(pid)
                continue
            for name in FAST:
                sample[name] += read[name]
            summed.append(pid)
        if gone:
            with self._lock:
                for pid in gone:
                    self.extra.pop(pid).close()
                self.version += 1
        if not summed:
            return None
        if detail and not self.extra:  # the extra members' detail is not read: none then
            sample.update(details)
        sample["children"] = len(summed) - (0 if self.root_exited else 1)
        self._note(now, summed)
        return sample

    def _note(self, t: float, summed: list[int]) -> None:
        last = self._epochs[-1][1] if self._epochs else None
        if last is None or len(last) != len(summed) or not last.issuperset(summed):
            self._epochs.append((t, frozenset(summed)))
            del self._epochs[:-64]  # the growth sink reads them within a flush or two

    def members_at(self, t: float) -> frozenset[int] | None:
        """The pids summed in the sample at ``t`` (for the growth estimator)."""
        i = bisect.bisect_right(self._epochs, t, key=lambda e: e[0])
        return self._epochs[i - 1][1] if i else None


# -- what viewers are told -----------------------------------------------------------------


def summary(target: Target, growth_of: GrowthOf, public: Callable[[dict], dict] = dict) -> dict:
    """``{"pid", "members": [{"pid", "name", "cmdline", "rss", "growth", "no_detail"?}],
    "ranking": [pid, ...], "root_exited", "extra", "note"?}``: ranking by growth rate, highest
    first (members without a rate yet last)."""
    tree: Tree = target.tree
    rows = []
    for member in sorted(tree.snapshot(), key=lambda m: m.pid):
        info = public(member.process)
        latest = member.latest
        row = {
            "pid": member.pid,
            "name": info.get("name"),
            "cmdline": info.get("cmdline"),
            "rss": latest["rss"] if latest else None,
            "growth": growth_of(member.pid, False),
        }
        if member.detail_error:
            row["no_detail"] = member.detail_error
        rows.append(row)
    out = {
        "pid": target.pid,
        "members": rows,
        "ranking": ranking(rows),
        "root_exited": tree.root_exited,
        "extra": len(tree.extra),
    }
    notes = []
    if tree.root_exited:
        notes.append(f"process {target.pid} has exited; its children stay watched until they exit")
    if tree.extra:
        notes.append(
            f"{len(tree.extra)} more processes are summed in the total but not drawn "
            f"(at most {tree.max_members} per tree); the total has no uss/pss then"
        )
    if notes:
        out["note"] = "; ".join(notes)
    return out


def ranking(rows: list[dict]) -> list[int]:
    def rate(row: dict) -> float:
        growth = row.get("growth")
        return growth["bytes_per_min"] if growth else float("-inf")

    return [row["pid"] for row in sorted(rows, key=lambda r: (-rate(r), r["pid"]))]


def unsampled(pid: int) -> dict:
    """A tree nobody samples: its members now, their RSS, no growth yet (raises memdash
    errors for a missing process or a kernel thread)."""
    memory.identify(pid)
    rows = []
    for member in [pid, *sorted(memory.descendants(pid))]:
        try:
            info = memory.describe(member)
            rss = memory.read_fast(member)["rss"]
        except errors.MemdashError:
            continue  # exited meanwhile
        row = {"pid": member, "name": info["name"], "cmdline": info["cmdline"], "rss": rss}
        rows.append({**row, "growth": None})
    return {"pid": pid, "members": rows, "ranking": [r["pid"] for r in rows]}


def acked(
    target: Target,
    growth_of: GrowthOf,
    public: Callable[[dict], dict],
    since: float | None,
    window: float | None,
    max_points: int,
) -> dict:
    """The tree part of a watch's ack: the summary, each member row with its own backfill
    (``samples``, ``bucket``: as the total's, see History.backfill)."""
    out = summary(target, growth_of, public)
    members = {m.pid: m for m in target.tree.snapshot()}
    for row in out["members"]:
        member = members.get(row["pid"])
        if member is not None:
            row["samples"], row["bucket"] = member.history.backfill(since, window, max_points)
    return out


def report(
    target: Target | None, pid: int, growth_of: GrowthOf, public: Callable[[dict], dict]
) -> dict:
    """``GET /api/processes/<pid>/tree``: the sampled tree's summary (with its total's RSS
    and growth), or the tree as it is now when nobody samples it."""
    if target is None or target.tree is None:
        found = unsampled(pid)
        found["members"] = [{**row, **_masked(public, row)} for row in found["members"]]
        return found
    out = summary(target, growth_of, public)
    latest = target.latest
    out["total"] = {"rss": latest["rss"] if latest else None, "growth": growth_of(pid, True)}
    out["exited"] = target.exited_at is not None
    return out


def _masked(public: Callable[[dict], dict], row: dict) -> dict:
    return {"cmdline": public(row).get("cmdline")}
