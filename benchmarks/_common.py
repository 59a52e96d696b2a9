"""Shared helpers for the benchmark scripts (not a test module; nothing here asserts timing).

Each ``benchmarks/bench_*.py`` runs as ``.venv/bin/python benchmarks/bench_<name>.py`` from the
repo root; Python puts ``benchmarks/`` on ``sys.path``, so the scripts ``from _common import ...``.
Importing this module also puts the repo root on ``sys.path`` so ``dashboard`` imports.
The server, the python-socketio viewer and polling are dashboard.testing's, shared with the
tests; what is here is for benchmarks only (reporting, /proc readers, idle targets, RawViewer).

Everything listens on and connects to 127.0.0.1 only.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# free_port is re-exported for the scripts that start a redis-server of their own.
from dashboard.testing import free_port as free_port  # noqa: E402
from dashboard.testing import wait_for  # noqa: E402

MiB = 2**20
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- reporting ------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "?"


def header(title: str) -> None:
    """Print the benchmark title, the machine, and the command that repeats this run."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = script.relative_to(ROOT).as_posix()
    except ValueError:
        shown = str(script)
    command = " ".join([".venv/bin/python", shown, *map(shlex.quote, sys.argv[1:])])
    print(f"## {title}\n")
    print(
        f"- machine: {os.cpu_count()} cores ({_cpu_model()}), {_mem_total()} RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"- repeat: `{command}` (from the repo root)\n", flush=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table; numbers right-aligned in spirit, everything str()-ed."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + " |"
        for row in rows
    ]
    return "\n".join([line, sep, *body])


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    print(table(headers, rows), flush=True)
    print()


def note(text: str) -> None:
    print(textwrap.fill(text, width=100), flush=True)
    print()


def percentile(values: Sequence[float], p: int) -> float:
    """The p-th percentile (1..99) by ``statistics.quantiles``, "inclusive" method: linear
    interpolation between closest ranks (numpy's default). NaN without values."""
    if len(values) < 2:  # quantiles needs two
        return values[0] if values else math.nan
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points by ``statistics.linear_regression``; NaN where
    there is no line (fewer than two points, or every x the same)."""
    try:
        return statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope
    except statistics.StatisticsError:
        return math.nan


def progress(text: str) -> None:
    """A progress line on stderr, so stdout stays the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- processes ------------------------------------------------------------------------------


def rss(pid: int) -> int:
    """Resident set size in bytes, from /proc/PID/statm."""
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of ``pid`` so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


IDLE = "import time\nwhile True: time.sleep(1e6)"


def synthetic_recording(
    path: Path, pids: int, n: int, t0: float, spike: Callable[[int, int], int] = lambda i, p: 0
) -> int:
    """Write ``n`` samples at 10 Hz from ``t0`` for each of ``pids`` processes to the recording
    at ``path`` (every fast figure; USS, PSS, swap and anon once a second), each growing 4 KiB
    a sample, plus ``spike(i, p)`` bytes; returns how many samples it wrote."""
    from dashboard.recording import Recorder

    with Recorder(path, started_at=t0, max_queue=10**6) as rec:
        for p in range(pids):
            rec.add_process(1000 + p, 1.0, False, {"name": f"proc{p}", "cmdline": f"proc {p}"})
        for start in range(0, n, 3000):
            batches = []
            for p in range(pids):
                samples = []
                for i in range(start, min(n, start + 3000)):
                    rss = (100 + p) * MiB + i * 4096 + spike(i, p)
                    s = {"t": t0 + i / 10, "rss": rss, "vms": 3 * rss, "shared": 8 * MiB,
                         "text": MiB, "data": rss // 2}  # fmt: skip
                    if i % 10 == p % 10:
                        s.update(uss=rss - MiB, pss=rss - MiB // 2, swap=0, anon=rss // 2)
                    samples.append(s)
                batches.append({"pid": 1000 + p, "children": False, "samples": samples})
            rec.add_batches(batches)
            rec.flush(120)
    return n * pids


class IdleProcesses:
    """``n`` Python children (a realistic target: a few MB, ~40 mappings) running ``code``,
    idle by default; each gets its index as ``sys.argv[1]``."""

    def __init__(self, n: int, code: str = IDLE):
        self.procs = [
            subprocess.Popen([sys.executable, "-c", code, str(i)], stdin=subprocess.DEVNULL)
            for i in range(n)
        ]
        # Wait until each has finished starting (its statm stops changing is overkill: its
        # cmdline being set and RSS non-zero is enough for memdash to accept it).
        for p in self.procs:
            wait_for(lambda p=p: _started(p.pid), 10, f"idle child {p.pid}")
        time.sleep(0.3)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _started(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"-c" in f.read() and rss(pid) > 0
    except OSError:
        return False


# -- viewers --------------------------------------------------------------------------------


class RawViewer:
    """A minimal Socket.IO client over one WebSocket (websocket-client), for timing.

    python-socketio's client runs every incoming message's handler on a new thread
    (engineio ``_trigger_event(..., run_async=True)``), which costs CPU and adds its own delay
    under load. This one speaks just enough Engine.IO 4 / Socket.IO 5 (open, connect, ping/pong,
    events, acks) and timestamps each frame the moment ``recv()`` returns it.
    """

    def __init__(self, url: str, on_samples=None):
        import json

        import websocket

        self._json = json
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        # websocket-client checks UTF-8 byte by byte in Python unless told not to (a 170 kB
        # ack took ~50 ms, making the clients the bottleneck); decoding the text still rejects
        # invalid UTF-8, in C, as a browser does.
        self.ws = websocket.create_connection(ws_url, timeout=10, skip_utf8_validation=True)
        opened = self.ws.recv()
        if not opened.startswith("0"):
            raise RuntimeError(f"unexpected Engine.IO open packet: {opened[:80]!r}")
        self.ws.send("40")
        self._on_samples = on_samples
        self._acks: dict[int, object] = {}
        self._ack_ready = threading.Condition()
        self._next_id = 0
        self._connected = threading.Event()
        self.samples = 0
        self.messages = 0
        self.errors: list = []
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._connected.wait(10):
            raise RuntimeError("no Socket.IO connect reply")

    def _read(self) -> None:
        import websocket

        self.ws.settimeout(None)
        while not self._closed:
            try:
                frame = self.ws.recv()
            except (websocket.WebSocketException, OSError):
                return
            received = time.time()
            if not isinstance(frame, str) or not frame:
                continue
            if frame == "2":  # Engine.IO ping
                self.ws.send("3")
            elif frame.startswith("40"):
                self._connected.set()
            elif frame.startswith("42"):
                event, *args = self._json.loads(frame[2:])
                if event == "samples":  # one batch per watched process
                    self.messages += 1
                    self.samples += sum(len(b["samples"]) for b in args)
                    if self._on_samples is not None:
                        for batch in args:
                            self._on_samples(received, batch)
            elif frame.startswith("43"):
                body = frame[2:]
                i = 0
                while i < len(body) and body[i].isdigit():
                    i += 1
                with self._ack_ready:
                    self._acks[int(body[:i])] = self._json.loads(body[i:])[0]
                    self._ack_ready.notify_all()

    def watch(self, pid: int, since: float | None = None, window: float | None = None) -> dict:
        payload: dict = {"pid": pid}
        if since is not None:
            payload["since"] = since
        if window is not None:
            payload["window"] = window
        with self._ack_ready:
            ack_id = self._next_id
            self._next_id += 1
        self.ws.send("42" + str(ack_id) + self._json.dumps(["watch", payload]))
        with self._ack_ready:
            if not self._ack_ready.wait_for(lambda: ack_id in self._acks, 30):
                raise RuntimeError(f"no ack for watch {pid}")
            ack = self._acks.pop(ack_id)
        if "error" in ack:
            self.errors.append(ack["error"])
        return ack

    def counts(self) -> tuple[int, int]:
        return self.messages, self.samples

    def close(self, wait: bool = False) -> None:
        self._closed = True
        try:
            self.ws.send("41")
            self.ws.close(timeout=1)
        except Exception:
            pass
