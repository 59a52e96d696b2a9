"""Fixtures: real child processes, the real server on a loopback port, real clients.

Nothing here is mocked. Waiting is always "poll until a condition holds, with a deadline".
The server, viewer and polling helpers live in dashboard.testing (the benchmarks use them
too); they are imported here for the test modules that take them from conftest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from dashboard import create_app
from dashboard.testing import ROOT, Server, Viewer, free_port, wait_for

__all__ = [
    "ROOT",
    "MiB",
    "Server",
    "Viewer",
    "free_port",
    "wait_for",
    "process_age",
    "spawn_with_pid",
]

MiB = 2**20
T = TypeVar("T")

# Every memdash the tests start records its session like a user's would; never into the
# home directory of whoever runs the tests.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="memdash-test-data-")


def _closed_after(make: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """A fixture body: hand out a factory, then close everything it made."""
    made: list = []

    def factory() -> T:
        made.append(make())
        return made[-1]

    yield factory
    for thing in made:
        thing.close()


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


def process_age(pid: int) -> float:
    """Seconds since ``pid`` started, from its start time in /proc/PID/stat (clock ticks since
    boot). Start times only tell processes apart a tick (10 ms) or more apart, so a test that
    reuses a PID waits for the first process to be older than that."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    start_ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])  # field 22, starttime
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


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
def make_allocator():
    yield from _closed_after(Allocator)


@pytest.fixture
def allocator(make_allocator):
    return make_allocator()


# -- the app, in process (REST tests through Flask's test client) ------------------------------


@pytest.fixture
def app():
    app = create_app({"INTERVAL": 0.05, "TESTING": True})
    yield app
    app.extensions["memdash"].stop()


@pytest.fixture
def client(app):
    return app.test_client()


# -- the real server and a real Socket.IO client -----------------------------------------------


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def viewer_factory(server):
    yield from _closed_after(lambda: Viewer(server.url))


@pytest.fixture
def viewer(viewer_factory):
    return viewer_factory()


@pytest.fixture(scope="session")
def chromium_profiles(tmp_path_factory):
    """Where the tests' Chromium keeps its profiles (and so its code cache) for the session."""
    return tmp_path_factory.mktemp("chromium-profiles")


@pytest.fixture(scope="module")
def browser(chromium_profiles):
    """Headless Chromium (Debian's), one per test module: ``new_page(browser, view)`` gives a
    fresh tab; see tests/_browser.py (Chromium)."""
    from _browser import Chromium
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = Chromium(p, chromium_profiles)
        yield b
        b.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple:
    """A real session: `memdash record` of a child that allocates while it is recorded;
    (its file, the child's pid)."""
    path = tmp_path_factory.mktemp("replay") / "session.sqlite"
    child = Allocator()
    try:
        argv = [sys.executable, "-m", "dashboard", "record", "-o", str(path), "--duration", "3",
                "--pid", str(child.pid)]  # fmt: skip
        rec = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # Allocate only once the first samples are in the file, so it holds the climb.
        wait_for(lambda: _recorded_samples(path) > 0, message="the first recorded samples")
        child.alloc(20)
        out, _ = rec.communicate(timeout=30)
        assert rec.returncode == 0, out
    finally:
        child.close()
    return path, child.pid


def _recorded_samples(path) -> int:
    """Samples in a recording being written (0 while the file is not there or empty)."""
    import sqlite3

    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT count(*) FROM samples").fetchone()[0]
    except sqlite3.Error:  # the schema is not written yet
        return 0


@pytest.fixture
def shots(tmp_path):
    """Where browser tests save their screenshots: $MEMDASH_SHOTS to keep them, else tmp."""
    from pathlib import Path

    where = Path(os.environ.get("MEMDASH_SHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def procs():
    """Start programs (text pipes, line-buffered); each is killed and reaped after the test."""
    started: list[subprocess.Popen] = []

    def start(argv, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.PIPE)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        started.append(subprocess.Popen(argv, text=True, bufsize=1, **kw))
        return started[-1]

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()
