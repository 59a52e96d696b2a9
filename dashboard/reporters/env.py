"""The environment that makes a child program (and its children) load memdash's reporters."""

from __future__ import annotations

import compileall
import os
from pathlib import Path
from typing import Mapping, Optional

HERE = Path(__file__).resolve().parent
NODE_REPORTER = HERE / "node_reporter.cjs"
PYTHON_DIR = HERE / "python"  # holds sitecustomize.py and the reporter it starts

REPORT_VAR = "MEMDASH_REPORT"
TRACEMALLOC_VAR = "MEMDASH_TRACEMALLOC"


def node_quote(text: str) -> str:
    """Quote one NODE_OPTIONS word: Node splits NODE_OPTIONS on spaces, except inside double
    quotes, where a backslash escapes the next character."""
    if text and not any(c in text for c in ' \t\n"\\'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def node_options(existing: Optional[str], reporter: Path = NODE_REPORTER) -> str:
    """``existing`` NODE_OPTIONS with ``--require <reporter>`` appended (once)."""
    option = "--require " + node_quote(str(reporter))
    existing = (existing or "").strip()
    if option in existing:
        return existing
    return f"{existing} {option}" if existing else option


def python_path(existing: Optional[str], directory: Path = PYTHON_DIR) -> str:
    """``existing`` PYTHONPATH with ``directory`` in front (once; empty entries dropped, since
    an empty entry would put the current directory on sys.path)."""
    entries = [e for e in (existing or "").split(os.pathsep) if e and e != str(directory)]
    return os.pathsep.join([str(directory), *entries])


def precompile() -> None:
    """Write the reporter's bytecode next to it (for this Python version) if it is missing or
    stale: every Python child imports it at start-up, and compiling it there each time (when
    the user sets PYTHONDONTWRITEBYTECODE, or the directory is not theirs to write) costs
    several ms. A read-only installation is fine: pip compiled it at install time."""
    try:
        compileall.compile_dir(str(PYTHON_DIR), maxlevels=0, quiet=2)
    except OSError:
        pass


def child_env(
    socket_path: str,
    *,
    tracemalloc: bool = False,
    base: Optional[Mapping[str, str]] = None,
) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) for a child whose Node or
    Python heap should be reported to the receiver listening on ``socket_path``.

    The user's NODE_OPTIONS and PYTHONPATH are kept and extended. ``tracemalloc`` also asks
    Python children to trace allocations from start-up (traced_current/traced_peak, and what
    Find the leak needs); it slows Python allocations, so it is opt-in.
    """
    precompile()
    env = dict(os.environ if base is None else base)
    env["NODE_OPTIONS"] = node_options(env.get("NODE_OPTIONS"))
    env["PYTHONPATH"] = python_path(env.get("PYTHONPATH"))
    env[REPORT_VAR] = str(socket_path)
    if tracemalloc:
        env[TRACEMALLOC_VAR] = "1"
    else:
        env.pop(TRACEMALLOC_VAR, None)
    return env
