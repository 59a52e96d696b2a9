"""Growth verdicts for everything sampled: one :class:`growth.GrowthEstimator` per target, fed
as a sampler sink, and a ``growth`` message once a second to the viewers that watch.

The estimator is the one judgement of growth memdash makes (the page draws it, the run monitor
and /metrics read it); this module only keeps one per series, feeds it RSS, and says the
results: ``growth_of(pid, children)`` for anyone, and a Socket.IO ``growth`` message with one
``{"pid", "children", "growth"}`` argument per target a viewer receives (a tree's members
too), encoded once per group of viewers who receive the same set.

A tree's total is fed with the set of members each sample summed (``Tree.members_at``): a
member joining or leaving is a step, not growth. Its viewers get a ``tree`` message
(trees.summary: members, ranking by growth) when its membership changes, and once a second
while the ranking changes (at least every ``tree_every`` seconds anyway, for the members' RSS).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from . import trees
from .growth import GrowthEstimator
from .holders import group_by_audience
from .sampler import Emit
from .target import Target

Key = tuple[int, bool]


class Verdicts:
    """A sampler sink (``flushed``/``exited``) keeping the growth of every sampled target."""

    def __init__(
        self,
        emit: Emit,
        *,
        is_helper: Callable[[int], bool] = lambda pid: False,
        interval: float = 1.0,
        tree_every: float = 5.0,
    ):
        self.emit = emit
        self.is_helper = is_helper  # a run's service (redis-server): filling a cache is no leak
        self.interval = interval
        self._estimators: dict[Key, GrowthEstimator] = {}
        self._targets: dict[Key, Target] = {}
        self._growth: dict[Key, dict] = {}
        self.tree_every = tree_every
        self._told: dict[int, tuple[Target, int, list[int], float]] = {}  # tree root -> last said
        self._next_report = 0.0
        self._lock = threading.Lock()

    # -- the sampler sink --------------------------------------------------------------------

    def flushed(self, batches: list[tuple[Target, list[dict]]]) -> None:
        with self._lock:
            for target, samples in batches:
                key = (target.pid, target.children)
                estimator = self._estimators.get(key)
                if estimator is None or self._targets.get(key) is not target:  # new, or reused
                    estimator = GrowthEstimator(helper=self.is_helper(target.pid))
                    self._estimators[key], self._targets[key] = estimator, target
                tree = target.tree
                for sample in samples:
                    # A tree's membership changing is a step, not growth.
                    members = tree.members_at(sample["t"]) if tree is not None else None
                    estimator.add(sample["t"], sample["rss"], members)
        now = time.time()
        for target, _samples in batches:  # a tree's viewers hear of a new member at once
            if target.tree is None:
                continue
            told = self._told.get(target.pid)
            if told is None or told[:2] != (target, target.tree.version):
                self._tell_tree(target, now)
        if now >= self._next_report:
            self._next_report = now + self.interval
            self._report(now)

    def exited(self, target: Target, t: float, reason: str) -> None:
        with self._lock:
            key = (target.pid, target.children)
            if self._targets.get(key) is target:  # the last verdict stays readable
                del self._estimators[key], self._targets[key]
            if target.tree is not None and self._told.get(target.pid, (None,))[0] is target:
                del self._told[target.pid]

    # -- reading -----------------------------------------------------------------------------

    def growth_of(self, pid: int, children: bool = False) -> dict | None:
        with self._lock:
            return self._growth.get((pid, children))

    def quiet(self, pids: list[int], start: float, end: float) -> None:
        """Ignore ``start..end`` (a tool action) in these processes and the trees they are in."""
        wanted = set(pids)
        with self._lock:
            for (pid, children), estimator in self._estimators.items():
                target = self._targets[(pid, children)]
                inside = children and wanted & set(list(target.readers))
                if pid in wanted or inside:
                    estimator.quiet(start, end)

    # -- once a second -------------------------------------------------------------------------

    def _report(self, now: float) -> None:
        by_audience: dict[frozenset[str], list[dict]] = {}  # as the sampler's samples
        with self._lock:
            for key, estimator in list(self._estimators.items()):
                target = self._targets[key]
                if target.exited_at is not None or not target.held:
                    continue
                growth = self._growth[key] = estimator.estimate(now).to_dict()
                message = {"pid": key[0], "children": key[1], "growth": growth}
                audience = frozenset(target.recipients)
                if audience:
                    by_audience.setdefault(audience, []).append(message)
            totals = [t for k, t in self._targets.items() if k[1] and t.tree is not None]
        for messages, sids in group_by_audience(by_audience):
            self.emit("growth", messages, sids)
        for total in totals:  # the ranking, when it changed (or now and then: fresh RSS)
            told = self._told.get(total.pid)
            if total.sockets and total.exited_at is None and told is not None:
                ranking = trees.ranking(
                    [{"pid": m.pid, "growth": self.growth_of(m.pid)} for m in total.tree.snapshot()]
                )
                if ranking != told[2] or now - told[3] >= self.tree_every:
                    self._tell_tree(total, now)

    def _tell_tree(self, total: Target, now: float) -> None:
        """Send a tree's viewers its members and ranking (``tree`` event)."""
        summary = trees.summary(total, self.growth_of)
        self._told[total.pid] = (total, total.tree.version, summary["ranking"], now)
        sockets = sorted(total.sockets)
        if sockets:
            self.emit("tree", summary, sockets)
