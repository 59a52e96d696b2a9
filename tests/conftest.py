"""Fixtures: real child processes, the real server on a free loopback port, real clients.

Nothing here is mocked. Waiting is always "poll until a condition holds, with a deadline".
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio

from dashboard import create_app

ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20


def wait_for(condition, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or condition}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a child process that allocates on request ------------------------------------------------

ALLOCATOR = textwrap.dedent(
    """
    import sys
    held = []
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "alloc":           # allocate N MiB and touch every page
            block = bytearray(int(arg) * 1024 * 1024)
            for i in range(0, len(block), 4096):
                block[i] = 1
            held.append(block)
        elif cmd == "free":
            held.clear()
        elif cmd == "exit":
            sys.exit(int(arg or 0))
        print("ok", flush=True)
    """
)


class Allocator:
    """A real Python child that allocates (and touches) memory when told to."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ALLOCATOR],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def alloc(self, mib: int) -> None:
        self.send(f"alloc {mib}")

    def exit(self, code: int = 0) -> None:
        self.proc.stdin.write(f"exit {code}\n")
        self.proc.stdin.flush()
        self.proc.wait(10)

    def vmrss(self) -> int:
        """VmRSS from /proc/PID/status, the kernel's own figure, in bytes."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def spawn_with_pid(pid: int, argv: list[str], attempts: int = 50) -> subprocess.Popen:
    """Start ``argv`` as a process with PID ``pid`` (freed just before): real PID reuse.

    As root, /proc/sys/kernel/ns_last_pid says which PID the kernel hands out next; without
    root, fork throw-away children until the PID counter comes round. Anything else forking
    at that moment may take the PID first, so try a few times.
    """
    for _ in range(attempts):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(pid - 1))
        except PermissionError:
            _cycle_pids_to(pid - 1)
        proc = subprocess.Popen(argv)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    raise AssertionError(f"could not get PID {pid} back after {attempts} attempts")


def _cycle_pids_to(last: int) -> None:
    """Fork and reap children until the next PID the kernel hands out is ``last + 1``."""
    from dashboard import memory

    for _ in range(2 * memory.pid_max()):
        child = os.fork()
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)
        # PIDs between ours and the wanted one may belong to live processes: skipped anyway.
        if child <= last and all(os.path.exists(f"/proc/{p}") for p in range(child + 1, last + 1)):
            return


@pytest.fixture
def allocator():
    child = Allocator()
    yield child
    child.close()


@pytest.fixture
def make_allocator():
    children = []

    def make() -> Allocator:
        child = Allocator()
        children.append(child)
        return child

    yield make
    for child in children:
        child.close()


# -- the app, in process (REST tests through Flask's test client) ------------------------------


@pytest.fixture
def app():
    app = create_app({"INTERVAL": 0.05, "TESTING": True})
    yield app
    app.extensions["memdash"].stop()


@pytest.fixture
def client(app):
    return app.test_client()


# -- the real server, as a user starts it ---------------------------------------------------


class Server:
    """``memdash`` as a user starts it, on a free loopback port; ``start()`` again after a
    stop brings it back on the same port."""

    def __init__(self, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        # A file, not a pipe: a pipe nobody reads would fill up and block the server.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="memdash-server-", suffix=".txt")
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dashboard",
                "--no-browser",
                "--port",
                str(self.port),
                "--interval",
                "0.05",
                *self.extra,
            ],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, timeout=20, message=f"memdash to answer on {self.url}")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"memdash exited: {self.output()}")
        try:
            return requests.get(self.url + "/api/system", timeout=1).ok
        except requests.ConnectionError:
            return False

    def output(self) -> str:
        with open(self.log.name) as f:
            return f.read()

    def get(self, path: str, **kw):
        return requests.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, json=None, **kw):
        """POST a JSON body ({} when none is given: memdash takes only JSON posts)."""
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


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    srv.stop()


# -- a real Socket.IO client ------------------------------------------------------------------


class Viewer:
    """A python-socketio client that records every server event in a queue per event."""

    def __init__(self, url: str):
        self.sio = socketio.Client(reconnection=False)
        self.events: dict[str, queue.Queue] = {}
        self.messages: collections.Counter = collections.Counter()
        for name in ("samples", "process_exit", "system", "run"):
            self.events[name] = queue.Queue()
            self.sio.on(name, self._recorder(name))
        self.sio.connect(url, transports=["websocket"], wait_timeout=10)

    def _recorder(self, name):
        def record(*payloads):  # a "samples" message carries one batch per watched process
            self.messages[name] += 1
            for payload in payloads:
                self.events[name].put(payload)

        return record

    def call(self, event: str, payload=None, timeout: float = 10):
        if payload is None:
            return self.sio.call(event, timeout=timeout)
        return self.sio.call(event, payload, timeout=timeout)

    def next(self, name: str, timeout: float = 10, where=lambda payload: True):
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

    def close(self) -> None:
        """Disconnect without waiting: websocket-client waits up to 3 s for the server's close
        frame after the Socket.IO disconnect packet has gone out, which only slows tests."""
        if self.sio.connected:
            threading.Thread(target=self.sio.disconnect, daemon=True).start()


@pytest.fixture
def viewer_factory(server):
    viewers = []

    def make() -> Viewer:
        v = Viewer(server.url)
        viewers.append(v)
        return v

    yield make
    for v in viewers:
        v.close()


@pytest.fixture
def viewer(viewer_factory):
    return viewer_factory()
