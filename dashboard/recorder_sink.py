"""The sampler sink that records: every target's samples, its process and its exit go to a
:class:`dashboard.recording.Recorder`.

The Recorder only enqueues (its own thread writes), so a slow or full disk never holds up the
sampling thread. A write error stops recording; :meth:`RecorderSink.status` says so for the
page, and the error is logged once (by the Recorder).
"""

from __future__ import annotations

import logging
import threading

from .recording import Recorder
from .target import Target

log = logging.getLogger(__name__)


class RecorderSink:
    """``sampler.add_sink(RecorderSink(recorder))`` records whatever the sampler samples."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        # (pid, children) -> the Target last described to the recorder: a new Target under the
        # same key is a reused PID (or a re-watch after an exit), so a new process row.
        self._seen: dict[tuple[int, bool], Target] = {}
        self._lock = threading.Lock()

    def _describe(self, target: Target) -> None:
        key = (target.pid, target.children)
        if self._seen.get(key) is target:
            return
        self._seen[key] = target
        info = {k: v for k, v in target.describe().items() if k not in ("exited", "exited_at")}
        self.recorder.add_process(target.key.pid, target.key.create_time, target.children, info)

    # -- the sampler sink --------------------------------------------------------------------

    def flushed(self, batches: list[tuple[Target, list[dict]]]) -> None:
        with self._lock:
            out = []
            for target, samples in batches:
                self._describe(target)
                out.append({"pid": target.pid, "children": target.children, "samples": samples})
            self.recorder.add_batches(out)

    def exited(self, target: Target, t: float, reason: str) -> None:
        with self._lock:
            self._describe(target)
            self.recorder.add_exit(target.pid, target.children, t, reason)

    # -- for the page and the CLI -----------------------------------------------------------

    def status(self) -> dict:
        """``{"recording": bool, "path", "error", "dropped", "written"}``: recording is False
        once a write error (disk full, read-only) stopped it; ``error`` says why."""
        status = self.recorder.status()
        return {"recording": status["error"] is None, **status}
