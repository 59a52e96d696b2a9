"""What the commands share that needs no web server (``memdash record`` loads no Flask):
the one-line usage error and its exit code, the --pid checks, and starting, ending and
signalling a command's program as a shell would (``memdash run`` and ``memdash record``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .. import errors, memory


class UsageError(Exception):
    """A one-line message, and the exit code (2 unless given)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def fail(error: UsageError | errors.MemdashError) -> int:
    """Print ``error`` as memdash's one line on stderr; returns its exit code."""
    message = error.message if isinstance(error, errors.MemdashError) else str(error)
    print(f"memdash: error: {message}", file=sys.stderr)
    return getattr(error, "code", 2) if isinstance(error, UsageError) else 2


def check_pids(texts: list[str], *, detail: bool = False) -> list[int]:
    """The --pid values as live user-space processes (``detail``: whose USS/PSS can be read
    too); UsageError naming the first that is not."""
    pids = []
    for text in texts:
        try:
            pid = memory.parse_pid(text)
            memory.identify(pid)
            if detail:
                memory.read_detail(pid)
        except errors.MemdashError as e:
            raise UsageError(f"--pid {text}: {e.message}") from None
        pids.append(pid)
    return pids


def resolve(name: str) -> str:
    """The executable ``name`` runs, like a shell finds it; UsageError with the shell's exit
    code (127 not found, 126 not executable) otherwise."""
    if "/" in name:
        if not os.path.exists(name):
            raise UsageError(f"{name}: no such file", 127)
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise UsageError(f"{name}: permission denied (not an executable file)", 126)
        return name
    found = shutil.which(name)
    if found is None:
        raise UsageError(f"{name}: command not found", 127)
    return found


def spawn(command: list[str], env: dict | None = None) -> subprocess.Popen:
    """Start the program with memdash's stdio; UsageError 127/126 when it raced away (gone or
    changed since :func:`resolve`)."""
    try:
        return subprocess.Popen(command, env=env)
    except OSError as e:
        code = 127 if isinstance(e, FileNotFoundError) else 126
        raise UsageError(f"{command[0]}: {e.strerror}", code) from None


def exit_code(returncode: int) -> int:
    """A shell's exit code for a child's return code: 128 + N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def terminal_sent_it(child_pid: int) -> bool:
    """Whether a SIGINT memdash got came from Ctrl-C at its terminal *and* the program got it
    too: the terminal signals its whole foreground process group, so when memdash and the
    program are both in it, forwarding would deliver Ctrl-C twice. A SIGINT from `kill` (or
    when the program left memdash's group) is forwarded."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False  # no controlling terminal: it came from kill
    try:
        return os.tcgetpgrp(fd) == os.getpgrp() == os.getpgid(child_pid)
    except OSError:
        return False
    finally:
        os.close(fd)


def end_child(child: subprocess.Popen | None) -> None:
    """memdash itself is failing while the program runs: it is not left orphaned."""
    if child is not None and child.poll() is None:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
