"""Start memdash's Python reporter inside a running interpreter (PEP 768, Python >= 3.14).

    attach_python(pid, receiver)   # checks, sys.remote_exec, waits <= 5 s for its first report

``sys.remote_exec(pid, script)`` asks the target to run ``script`` at its next safe point (the
main thread, between bytecodes); the script loads this package's ``python/_memdash_reporter.py``
(by file, leaving the target's ``sys.path`` alone) and starts it towards the receiver's socket.
Only the target must be 3.14 or newer: when memdash runs on an older Python, the call is made
by the target's own interpreter (``/proc/PID/exe``) in a short-lived ``-I`` subprocess.

The reporter ends by itself when the receiver's socket goes away (memdash detaches, stops or
dies): its next read sees the end of the connection and its thread returns. The program keeps
the module loaded, idle; a later attach starts a new reporter in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Optional

import psutil

from dashboard.inspect_target import InspectError, python_attach_message
from dashboard.reporters.env import PYTHON_DIR
from dashboard.reporters.receiver import Receiver

ATTACH_TIMEOUT = 5.0  # for sys.remote_exec, then again for the first report
_REMOTE_EXEC = "import sys; sys.remote_exec(int(sys.argv[1]), sys.argv[2])"
_REPORTER = PYTHON_DIR / "_memdash_reporter.py"
# The script removes itself (and its private directory) first thing: it runs whenever the
# target gets to it, possibly after memdash gave up waiting.
_CLEAN = """\
import os
try:
    os.unlink({script!r})
    os.rmdir({folder!r})
except OSError:
    pass
"""
_START = """\
import sys
try:
    reporter = sys.modules.get("_memdash_reporter")
    if reporter is None:
        import importlib.util
        spec = importlib.util.spec_from_file_location("_memdash_reporter", {module!r})
        reporter = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(reporter)
        sys.modules["_memdash_reporter"] = reporter
    reporter.start(path={socket!r}, traced=False)
except Exception:
    pass  # inside someone else's program: never raise, never print
"""


class _Unsure(InspectError):
    """sys.remote_exec did not finish in time: the target may still run the script."""


def target_interpreter(pid: int) -> str:
    """The executable ``pid`` runs (symlinks resolved), if it is a live Python >= 3.14 of
    this user that can still be started; InspectError with the reason otherwise."""
    reason = python_attach_message(pid)  # also: no such process, a zombie, another user's
    if reason:
        raise InspectError(reason)
    try:
        exe = os.path.realpath(f"/proc/{pid}/exe")
    except PermissionError:  # not dumpable: its memory is closed to us as well
        raise InspectError(_denied(pid)) from None
    if not os.path.basename(exe).startswith("python") or not os.access(exe, os.X_OK):
        raise InspectError(
            f"process {pid}'s interpreter {exe} cannot be started (deleted or replaced since "
            "the program started?); attaching runs it to call sys.remote_exec"
        )
    return exe


def attach_python(pid: int, receiver: Receiver, timeout: float = ATTACH_TIMEOUT) -> None:
    """Make ``pid`` report its heap to ``receiver`` and wait until it has (at most
    ``timeout`` s for each step). InspectError, one line, when the target is not fit, the
    kernel refuses, it exits meanwhile or does not report in time; then nothing is left to
    start later (a script it has yet to run is emptied, to a clean-up of itself)."""
    exe = target_interpreter(pid)
    script = attach_script(receiver.path)
    try:
        remote_exec(pid, script, exe, timeout)
    except _Unsure:
        _disarm(script)
        raise
    except InspectError:
        shutil.rmtree(os.path.dirname(script), ignore_errors=True)  # it will never run it
        raise
    try:
        deadline = time.monotonic() + timeout
        while pid not in receiver.pids_reporting():
            if not _alive(pid):
                raise InspectError(f"process {pid} exited while memdash was attaching")
            if time.monotonic() > deadline:
                raise InspectError(
                    f"process {pid} did not start memdash's reporter within {timeout:g} s: "
                    "Python runs an attach script only when its main thread runs Python code "
                    "(not while it waits in input(), a long sleep or a C call)"
                )
            time.sleep(0.05)
    except InspectError:
        if _alive(pid):
            _disarm(script)
        else:
            shutil.rmtree(os.path.dirname(script), ignore_errors=True)
        raise


def attach_script(socket_path: str) -> str:
    """Write the script that ``sys.remote_exec`` hands the target, in a private (0700)
    directory of its own: it removes itself and that directory, then starts the reporter
    towards the receiver listening on ``socket_path``. Returns its path."""
    script = os.path.join(tempfile.mkdtemp(prefix="memdash-attach-"), "attach.py")
    _write(script, _clean(script) + _START.format(module=str(_REPORTER), socket=socket_path))
    return script


def _clean(script: str) -> str:
    return _CLEAN.format(script=script, folder=os.path.dirname(script))


def _disarm(script: str) -> None:
    """The target may still run ``script`` (after memdash gave up): then it only removes
    itself, and no reporter starts that nobody asked for any more."""
    _write(script, _clean(script))


def _write(path: str, text: str) -> None:
    """Replace ``path`` whole (the target may be opening it at this very moment)."""
    with open(path + ".new", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".new", path)


def remote_exec(pid: int, script: str, exe: Optional[str] = None, timeout: float = 5.0) -> None:
    """``sys.remote_exec(pid, script)``: here when memdash runs on Python >= 3.14, else
    through ``exe`` (the target's interpreter). InspectError with one clear line on failure."""
    if sys.version_info >= (3, 14) or exe is None:
        try:
            sys.remote_exec(pid, script)  # type: ignore[attr-defined]  (Python >= 3.14)
        except (OSError, RuntimeError, ValueError, AttributeError) as e:
            raise InspectError(_failure(pid, f"{type(e).__name__}: {e}")) from None
        return
    try:
        done = subprocess.run(
            [exe, "-I", "-c", _REMOTE_EXEC, str(pid), script],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise _Unsure(
            f"sys.remote_exec into process {pid} did not finish within {timeout:g} s"
        ) from None
    except OSError as e:
        raise InspectError(f"cannot run process {pid}'s interpreter {exe}: {e.strerror}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise InspectError(_failure(pid, lines[-1] if lines else f"exit code {done.returncode}"))


def _failure(pid: int, detail: str) -> str:
    """One line for a failed sys.remote_exec, from the exception's last line."""
    if "ProcessLookupError" in detail or "No such process" in detail or not _alive(pid):
        return f"process {pid} exited while memdash was attaching"
    if "PermissionError" in detail or "Operation not permitted" in detail:
        return _denied(pid)
    if "not enabled" in detail:
        return (
            f"process {pid} has remote debugging turned off (PYTHON_DISABLE_REMOTE_DEBUG, "
            "-X disable_remote_debug or a build --without-remote-debug); "
            "start it with `memdash run -- python ...` instead"
        )
    return f"sys.remote_exec into process {pid} failed: {detail}"


def _denied(pid: int) -> str:
    """The kernel refused to let another process write ``pid``'s memory: Yama, usually."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = f.read().strip()
    except OSError:
        scope = ""
    why = f"the kernel refused access to process {pid}'s memory (ptrace permission)"
    if scope == "1":
        return (
            f"{why}: kernel.yama.ptrace_scope is 1, so only its parent may; allow it with "
            "`sudo sysctl kernel.yama.ptrace_scope=0` or start it with `memdash run`"
        )
    if scope in ("2", "3"):
        return f"{why}: kernel.yama.ptrace_scope is {scope}; start it with `memdash run` instead"
    return why


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
