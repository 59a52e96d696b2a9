"""Replaying a recording (``memdash open FILE``): :class:`ReplaySource`, a time cursor over a
:class:`dashboard.recorded.Recording` (read through :class:`dashboard.replay_file.ReplayFile`)
that plays (1x, 10x), pauses and seeks, and sends the viewers watching the same messages the
live page gets: ``samples`` (one message per viewer per step, one argument per watched
series), ``process_exit``, ``growth`` (a :class:`GrowthEstimator` per watched series, fed the
same samples, once a second), ``run``, ``mark``, ``tool_result``, and ``replay`` (the
cursor's state) to everyone.

It stands where the sampler stands for a live page: ``watch``/``unwatch``/``release``/
``target`` have the sampler's signatures, and a watched series answers ``history.backfill``
like a live history (from the file, up to the cursor; ``max_points`` samples at most, as
min/max pairs per bucket when there are more), so the Socket.IO ``watch`` handler is the
live one. The file keeps every sample; only the view is downsampled.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from . import errors
from .growth import GrowthEstimator
from .recorded import Recording
from .replay_file import Key, ReplayFile, ReplayTarget, exit_event, run_at

log = logging.getLogger(__name__)

Emit = Callable[[str, "dict | list", "str | list[str] | None"], None]
SPEEDS = (1, 10)
PRIME_S = 60.0  # a (re)started estimator is fed this much history before the cursor


class ReplaySource(ReplayFile):
    """The cursor over one recording and the viewers watching it; ``start()`` its thread."""

    def __init__(self, recording: Recording, emit: Emit, *, tick: float = 0.1,
                 readers: int = min(4, os.cpu_count() or 1)):  # fmt: skip
        super().__init__(recording, readers)
        self.emit, self.tick = emit, tick
        self.speed, self.playing, self.seeks = 1, False, 0
        self._watches: dict[str, set[Key]] = {}
        self._estimators: dict[Key, GrowthEstimator] = {}
        self._pending: list[tuple[str, dict, str]] = []  # (event, payload, sid) for the thread
        self._growth_due = False
        self._next_report = 0.0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the cursor ------------------------------------------------------------------------

    def state(self) -> dict:
        with self._lock:
            return {"t": self.t, "start": self.first, "end": self.last, "speed": self.speed,
                    "playing": self.playing, "seek": self.seeks}  # fmt: skip

    def seek(self, t: float) -> dict:
        """Move the cursor; every viewer gets ``replay`` (a new ``seek`` number) and then the
        runs, marks and tool results up to ``t``; the pages watch again for their backfill."""
        with self._lock:
            self.t = min(max(t, self.first), self.last)
            self.seeks += 1
            for key in list(self._estimators):
                self._prime(key)
            self._growth_due = True
            state = self.state()
            self.emit("replay", state, None)
            self._context(None)
        return state

    def play(self, speed: int) -> dict:
        if speed not in SPEEDS:
            raise errors.BadRequest(f"speed must be one of {list(SPEEDS)}")
        with self._lock:
            if self.t >= self.last:  # at the end, play starts again from the beginning
                self.seek(self.first)
            self.speed, self.playing = speed, True
            self._next_report = 0.0
            self.emit("replay", self.state(), None)
            self.start()
            return self.state()

    def pause(self) -> dict:
        with self._lock:
            self.playing = False
            self.emit("replay", self.state(), None)
            return self.state()

    # -- viewers (the sampler's interface) -------------------------------------------------

    def watch(self, pid: int, children: bool, sid: str, *, limit: int = 32) -> ReplayTarget:
        key = (pid, children)
        rows = self.series.get(key)
        if rows is None:
            raise errors.NoSuchProcess(
                f"pid {pid}{' with its children' if children else ''} is not in this recording"
            )
        with self._lock:
            watched = self._watches.setdefault(sid, set())
            if key not in watched and len(watched) >= limit:
                raise errors.TooManyWatches(f"a viewer may watch at most {limit} processes")
            watched.add(key)
            if key not in self._estimators:
                self._prime(key)
            for gone in self._exits:  # ended before the cursor: say so once the ack is out
                if (gone["pid"], gone["children"]) == key and gone["t"] <= self.t:
                    self._pending.append(("process_exit", exit_event(gone), sid))
            self._growth_due = True
        return ReplayTarget(self, key, rows)

    def unwatch(self, pid: int, children: bool, sid: str) -> bool:
        with self._lock:
            watched = self._watches.get(sid, set())
            if (pid, children) not in watched:
                return False
            watched.discard((pid, children))
            self._forget_unwatched()
            return True

    def release(self, sid: str) -> None:
        with self._lock:
            self._watches.pop(sid, None)
            self._forget_unwatched()

    def target(self, pid: int, children: bool) -> ReplayTarget | None:
        rows = self.series.get((pid, children))
        return None if rows is None else ReplayTarget(self, (pid, children), rows)

    def greet(self, sid: str) -> None:
        """A new viewer: the runs, marks and tool results up to the cursor."""
        with self._lock:
            self._context(sid)

    def runs(self) -> list[dict]:
        """The runs as they stood at the cursor."""
        with self._lock:
            t = self.t
        return [r for r in (run_at(run, t) for run in self._runs) if r is not None]

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="memdash-replay",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the extra readers (the recording is its opener's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.close()

    def _loop(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            try:
                self._step(now - last, now)
            except Exception:  # a damaged page of the file: say so, keep serving
                log.exception("replay step failed")
            last = now

    def _step(self, elapsed: float, now: float) -> None:
        # Under the lock, emits included: a seek waits for the step, so nothing from before
        # the seek arrives after its ``replay`` message.
        with self._lock:
            pending, self._pending = self._pending, []
            for event, payload, sid in pending:
                self.emit(event, payload, sid)
            if self.playing:
                old, self.t = self.t, min(self.last, self.t + elapsed * self.speed)
                self._advance(old, self.t)
                if self.t >= self.last:
                    self.playing = False
                    self.emit("replay", self.state(), None)
            if self._growth_due or (self.playing and now >= self._next_report):
                if self.playing:
                    self.emit("replay", self.state(), None)  # the slider moves once a second
                self._next_report, self._growth_due = now + 1.0, False
                self._report()

    def _viewers_of(self) -> dict[Key, list[str]]:
        out: dict[Key, list[str]] = {}
        for sid, keys in self._watches.items():
            for key in keys:
                out.setdefault(key, []).append(sid)
        return out

    def _advance(self, old: float, new: float) -> None:
        """Send what happened in (old, new]: samples to their viewers, then exits, runs,
        marks and tool results."""
        viewers = self._viewers_of()
        batches: dict[Key, dict] = {}
        for key in viewers:
            samples = self.read(self.series[key], old, new)
            if samples:
                self._feed(key, samples)
                batches[key] = {"pid": key[0], "children": key[1], "samples": samples}
        groups: dict[tuple[Key, ...], list[str]] = {}  # one encoding per set of series
        for sid, keys in self._watches.items():
            mine = tuple(sorted(k for k in keys if k in batches))
            if mine:
                groups.setdefault(mine, []).append(sid)
        for keys, sids in groups.items():
            self.emit("samples", [batches[k] for k in keys], sids)
        for gone in self._exits:
            sids = viewers.get((gone["pid"], gone["children"]))
            if sids and old < gone["t"] <= new:
                self.emit("process_exit", exit_event(gone), sids)
        for run in self._runs:
            for edge in (run.get("started_at"), run.get("ended_at")):
                if edge is not None and old < edge <= new:
                    self.emit("run", run_at(run, new), None)
                    break
        for mark in self._marks:
            if old < mark["t"] <= new:
                self.emit("mark", mark, None)
        for result in self._tools:
            if old < result["t"] <= new:
                self.emit("tool_result", result, None)

    def _context(self, to: str | None) -> None:
        for run in self.runs():
            self.emit("run", run, to)
        for mark in self._marks:
            if mark["t"] <= self.t:
                self.emit("mark", mark, to)
        for result in self._tools:
            if result["t"] <= self.t:
                self.emit("tool_result", result, to)

    # -- growth ----------------------------------------------------------------------------

    def _prime(self, key: Key) -> None:
        """A fresh estimator, fed the minute before the cursor (as if it had been watching)."""
        self._estimators[key] = GrowthEstimator()
        self._feed(key, self.read(self.series[key], self.t - PRIME_S, self.t))

    def _feed(self, key: Key, samples: list[dict]) -> None:
        estimator = self._estimators.get(key)
        if estimator is None:
            return
        for s in samples:
            if "rss" in s:  # a tree's member count changing is a step, not growth
                estimator.add(s["t"], s["rss"], s.get("children") if key[1] else None)

    def _forget_unwatched(self) -> None:
        watched = set().union(*self._watches.values()) if self._watches else set()
        for key in set(self._estimators) - watched:
            del self._estimators[key]

    def _report(self) -> None:
        growth = {k: e.estimate(self.t).to_dict() for k, e in self._estimators.items()}
        for sid, keys in self._watches.items():
            messages = [{"pid": k[0], "children": k[1], "growth": growth[k]} for k in sorted(keys)]
            if messages:
                self.emit("growth", messages, sid)
