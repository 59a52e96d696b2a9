"""Helpers for memdash's tests and benchmarks: the real server, a real Socket.IO viewer, polling.

Like ``flask.testing``, this ships in the package but nothing in memdash imports it; only
tests/ and benchmarks/ do. The client libraries it drives (requests, python-socketio's client)
come with the ``test`` extra, so they are imported where they are used: importing this module
needs nothing beyond memdash's own dependencies.

Nothing here is mocked and nothing sleeps a fixed time: waiting is "poll a condition until it
holds, with a deadline". Everything listens on and connects to 127.0.0.1 only.
"""

from __future__ import annotations

import collections
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .procs import free_port  # noqa: F401  (re-exported: redis-server cannot pick its own port)

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# What memdash prints once its socket listens: "memdash 0.1.0 serving on http://127.0.0.1:PORT/"
_SERVING = re.compile(r"serving on http://\S+:(\d+)/")


def wait_for(
    condition: Callable[[], T], timeout: float = 10.0, message: str = "", interval: float = 0.05
) -> T:
    """Poll ``condition()`` until it returns something truthy, and return that; raise
    AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or condition}")
        time.sleep(interval)


class Server:
    """``memdash`` as a user starts it (``python -m dashboard --no-browser --port 0 ...``), on
    the loopback port it chose and printed. ``start()`` again after the process ended brings it
    back on the same port."""

    def __init__(self, *extra: str, interval: float = 0.05):
        self.port = 0  # until memdash says which one it bound
        self.extra = extra
        self.interval = interval
        # A file, not a pipe: a pipe nobody reads would fill up and block the server.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="memdash-server-", suffix=".txt")
        self.data_dir = tempfile.TemporaryDirectory(prefix="memdash-data-")
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> None:
        seen = len(self.output())  # a restart's own announcement comes after this
        argv = [sys.executable, "-m", "dashboard", "--no-browser", "--port", str(self.port)]
        argv += ["--interval", str(self.interval), *self.extra]
        # Sessions are recorded as a user's would be, but into a private data directory.
        env = {**os.environ, "XDG_DATA_HOME": self.data_dir.name}
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        self.port = int(
            wait_for(lambda: self._announced(seen), timeout=20, message="memdash to print its URL")
        )
        wait_for(self._answers, timeout=20, message=f"memdash to answer on {self.url}")

    def _announced(self, seen: int) -> str | None:
        match = _SERVING.search(self.output()[seen:])
        if match is None and self.proc.poll() is not None:
            raise AssertionError(f"memdash exited: {self.output()}")
        return match and match.group(1)

    def _answers(self) -> bool:
        import requests

        if self.proc.poll() is not None:
            raise AssertionError(f"memdash exited: {self.output()}")
        try:
            return requests.get(self.url + "/api/system", timeout=1).ok
        except requests.ConnectionError:
            return False

    def output(self) -> str:
        """Everything memdash wrote to stdout and stderr so far."""
        with open(self.log.name) as f:
            return f.read()

    def get(self, path: str, **kw: Any):
        import requests

        return requests.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, json: Any = None, **kw: Any):
        """POST a JSON body ({} when none is given: memdash takes only JSON posts)."""
        import requests

        return requests.post(self.url + path, json={} if json is None else json, timeout=30, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Viewer:
    """A python-socketio client of a memdash server.

    It counts every message and sample. With ``keep`` (tests) it also queues each payload by
    event, for ``next()``; long benchmark runs pass ``keep=False`` so nothing piles up, and may
    pass ``on_samples(received_at, batch)``, called for each batch as it arrives.
    """

    EVENTS = (
        "samples",
        "process_exit",
        "system",
        "run",
        "mark",
        "runs_cleared",
        "growth",
        "hello",
        "view",
        "tree",
    )

    def __init__(
        self,
        url: str,
        *,
        keep: bool = True,
        on_samples: Callable[[float, dict], None] | None = None,
    ):
        import socketio

        self.sio = socketio.Client(reconnection=False)
        self.events: dict[str, queue.Queue] = {name: queue.Queue() for name in self.EVENTS}
        self.messages: collections.Counter = collections.Counter()
        self.samples = 0
        self.errors: list[dict] = []
        self._keep = keep
        self._on_samples = on_samples
        # python-socketio runs each message's handler on a thread of its own.
        self._lock = threading.Lock()
        for name in self.EVENTS:
            self.sio.on(name, self._recorder(name))
        self.sio.connect(url, transports=["websocket"], wait_timeout=10)

    def _recorder(self, name: str):
        def record(*payloads):  # a "samples" message carries one batch per watched process
            received = time.time()
            with self._lock:
                self.messages[name] += 1
                if name == "samples":
                    self.samples += sum(len(batch["samples"]) for batch in payloads)
            if name == "samples" and self._on_samples is not None:
                for batch in payloads:
                    self._on_samples(received, batch)
            if self._keep:
                for payload in payloads:
                    self.events[name].put(payload)

        return record

    def call(self, event: str, payload: Any = None, timeout: float = 10) -> Any:
        if payload is None:
            return self.sio.call(event, timeout=timeout)
        return self.sio.call(event, payload, timeout=timeout)

    def watch(self, pid: int, since: float | None = None) -> dict:
        """Watch ``pid``; a refusal is kept in ``errors`` as well as returned."""
        payload = {"pid": pid} if since is None else {"pid": pid, "since": since}
        ack = self.call("watch", payload, timeout=30)
        if "error" in ack:
            self.errors.append(ack["error"])
        return ack

    def counts(self) -> tuple[int, int]:
        """(``samples`` messages, samples in them) so far."""
        with self._lock:
            return self.messages["samples"], self.samples

    def next(self, name: str, timeout: float = 10, where: Callable[[Any], bool] = lambda p: True):
        """The next ``name`` event matching ``where`` (earlier ones are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching {name!r} event within {timeout} s")
            try:
                payload = self.events[name].get(timeout=remaining)
            except queue.Empty:
                continue
            if where(payload):
                return payload

    def close(self, wait: bool = False) -> None:
        """Disconnect; without ``wait`` in a thread: websocket-client waits up to 3 s for the
        server's close frame after the Socket.IO disconnect packet has gone out."""
        if not self.sio.connected:
            return
        if wait:
            self.sio.disconnect()
        else:
            threading.Thread(target=self.sio.disconnect, daemon=True).start()
