"""Helpers shared by the --inspect tests (test_inspect.py: node; test_attach_python.py):
running memdash's CLI, its one-line errors, and a target that says whether it was signalled."""

from __future__ import annotations

import subprocess
import sys

from dashboard.testing import ROOT

# A Python target that prints "usr1" on SIGUSR1 and "pong" for each line on stdin.
PY_USR1 = (
    "import signal, sys\n"
    "signal.signal(signal.SIGUSR1, lambda *a: print('usr1', flush=True))\n"
    "print('ready', flush=True)\n"
    "for line in sys.stdin:\n"
    "    print('pong', flush=True)\n"
)


def memdash(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "--no-browser", "--port", "0", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess, fragment: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memdash: error:"), result.stderr
    assert fragment in lines[0], lines[0]
    return lines[0]


def not_signalled(target: subprocess.Popen) -> None:
    """A target that prints on SIGUSR1 answers two pings with two pongs and nothing else:
    a signal sent before memdash exited would have been handled before the first ping."""
    for _ in range(2):
        target.stdin.write("ping\n")
        target.stdin.flush()
        assert target.stdout.readline().strip() == "pong"
