"""End-to-end check of ``memdash --pid PID --inspect`` on a running Python >= 3.14 (PEP 768).

CI has no Python 3.14, so this is run by hand with one (memdash itself may run on an older
Python: the attach goes through the target's own interpreter):

    .venv/bin/python benchmarks/check_python_attach.py --python /path/to/python3.14

A target program grows a list, then holds still, printing ``sys.getallocatedblocks()`` every
0.1 s; its threads are counted in /proc/PID/task. Two attaches:

1. In this process: ``attach_python`` with a real ``Receiver``: time until the first report,
   then the receiver stops and the reporter thread in the target must end.
2. As a user would: the real server (``python -m dashboard --pid PID --inspect``) and a
   Socket.IO viewer; ``py_blocks`` in the samples must match what the program prints within
   1 %; then the server stops (SIGTERM) and the target must be back to its one thread, alive
   and still printing.

Prints a table and exits 1 if any check fails (2 if ``--python`` is not >= 3.14).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from _common import header, note, print_table, progress, wait_for

from dashboard.reporters import Receiver
from dashboard.reporters.attach import attach_python
from dashboard.testing import Server, Viewer

TARGET = """
import json, sys, time
items = []
for step in range(100000):
    if step < 20:  # 2 s of growth, then still
        items.extend(str(i) * 3 for i in range(10000))
    print(json.dumps({"step": step, "blocks": sys.getallocatedblocks()}), flush=True)
    time.sleep(0.1)
"""
GROWTH_STEPS = 20


class Target:
    """The Python >= 3.14 program under test; its printed lines, read by a thread."""

    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, "-c", TARGET], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: self.lines, 10, "the target's first line")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def last(self) -> dict:
        return self.lines[-1]

    def os_threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def stop(self) -> str:
        self.proc.kill()
        self.proc.wait()
        return self.proc.stderr.read()


def python_version(python: str) -> tuple[int, int]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    major, minor = out.split()
    return int(major), int(minor)


def in_process(target: Target) -> tuple[list[str], bool]:
    """attach_python with a Receiver here: (row, ok)."""
    got: list[dict] = []
    receiver = Receiver(lambda pid, fields: got.append(fields)).start()
    try:
        t0 = time.perf_counter()
        attach_python(target.pid, receiver)
        attach_ms = (time.perf_counter() - t0) * 1e3
        # the reporter's thread is a bare _thread one: threading does not count it; Linux does
        threads_attached = wait_for(lambda: target.os_threads() == 2, 5, "its reporter thread")
    finally:
        receiver.stop()
    ended = _ended(target)
    ok = bool(threads_attached and got and got[0].get("py_blocks") and ended)
    return [
        "attach_python + Receiver (here)",
        f"{attach_ms:.0f} ms",
        f"py_blocks {got[0].get('py_blocks') if got else '-'}",
        "yes" if ended else "NO: reporter thread still there",
    ], ok


def _ended(target: Target, timeout: float = 5.0) -> bool:
    """The reporter thread has ended and the program is alive and still printing."""
    seen = len(target.lines)
    try:
        wait_for(
            lambda: target.os_threads() == 1,
            timeout,
            "the reporter thread to end",
        )
        wait_for(lambda: len(target.lines) > seen + 5, timeout, "the target to go on printing")
    except AssertionError as e:
        progress(str(e))
        return False
    return target.proc.poll() is None


def through_server(target: Target) -> tuple[list[str], bool, list[float]]:
    """The real CLI and a Socket.IO viewer: (row, ok, relative differences)."""
    t0 = time.perf_counter()
    server = Server("--pid", str(target.pid), "--inspect", interval=0.5)
    start_ms = (time.perf_counter() - t0) * 1e3
    diffs: list[float] = []
    try:
        viewer = Viewer(server.url)
        try:
            ack = viewer.watch(target.pid)
            assert "error" not in ack, ack
            wait_for(lambda: target.last()["step"] > GROWTH_STEPS + 5, 20, "the target to settle")
            while len(diffs) < 5:
                batch = viewer.next(
                    "samples",
                    15,
                    lambda b: (
                        b["pid"] == target.pid and any("py_blocks" in s for s in b["samples"])
                    ),
                )
                printed = target.last()["blocks"]  # the program's own figure, printed just now
                for s in batch["samples"]:
                    if "py_blocks" in s:
                        diffs.append(abs(s["py_blocks"] - printed) / printed)
        finally:
            viewer.close(wait=True)
        described = server.get(f"/api/processes/{target.pid}").json()
    finally:
        server.stop()
    ended = _ended(target)
    worst = max(diffs)
    heap = described.get("language_heap")
    ok = worst <= 0.01 and ended and heap == "python"
    row = [
        "memdash --pid PID --inspect + viewer",
        f"{start_ms:.0f} ms (server start incl.)",
        f"worst {100 * worst:.3f} % over {len(diffs)} samples (language_heap: {heap})",
        "yes" if ended else "NO: reporter thread still there",
    ]
    return row, ok, diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="a Python >= 3.14 to run the target with")
    args = ap.parse_args()
    version = python_version(args.python)
    if version < (3, 14):
        print(f"{args.python} is Python {version[0]}.{version[1]}; this check needs >= 3.14")
        return 2
    header("Attach to a running Python >= 3.14 (sys.remote_exec, PEP 768)")
    target = Target(args.python)
    rows, ok = [], True
    try:
        progress("attach in this process")
        row, good = in_process(target)
        rows.append(row)
        ok &= good
        progress("attach through the server, watch with a viewer")
        row, good, _ = through_server(target)
        rows.append(row)
        ok &= good
        alive = target.proc.poll() is None
        ok &= alive
    finally:
        stderr = target.stop()
    print_table(
        ["attach", "attach time", "heap figure (py_blocks vs the program's)", "detach OK"], rows
    )
    note(
        f"target: {args.python} (Python {version[0]}.{version[1]}); memdash on Python "
        f"{sys.version_info[0]}.{sys.version_info[1]}. Attached twice to the same program; "
        f"it was {'alive' if alive else 'NOT alive'} at the end"
        + (
            f"; its stderr: {stderr.strip()!r}"
            if stderr.strip()
            else " and wrote nothing to stderr"
        )
        + ". Match: each sample's py_blocks against the program's latest printed "
        "sys.getallocatedblocks(), while it holds still; target within 1 %."
    )
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
