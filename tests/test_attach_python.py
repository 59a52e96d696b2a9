"""memdash --pid PID --inspect on a running Python program (PEP 768, reporters/attach.py): a
Python older than 3.14 is refused before anything is done to it; the attach script, run as
sys.remote_exec would run it, reports, removes itself and stops with the receiver. A real
Python 3.14 target is checked by hand: benchmarks/check_python_attach.py (CI has no 3.14)."""

from __future__ import annotations

import glob
import os
import sys
import tempfile
from functools import partial

import pytest

from dashboard.inspect_target import InspectError
from dashboard.reporters import Receiver
from dashboard.reporters.attach import attach_python, attach_script, remote_exec
from tests._inspect import PY_USR1, memdash, not_signalled, one_line_error
from tests.conftest import wait_for


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def attach_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "memdash-attach-*")))


def test_inspect_refuses_a_python_older_than_3_14_before_doing_anything(procs):
    assert sys.version_info < (3, 14), "this test needs a target older than Python 3.14"
    target = procs([sys.executable, "-c", PY_USR1])
    assert target.stdout.readline().strip() == "ready"
    before = attach_dirs()
    version = f"Python {sys.version_info[0]}.{sys.version_info[1]}"
    line = one_line_error(memdash("--pid", str(target.pid), "--inspect"), f"runs {version}")
    assert "Python >= 3.14 in that program" in line and "sys.remote_exec" in line
    assert "memdash run -- python" in line
    not_signalled(target)
    assert threads(target.pid) == 1  # no reporter thread in it
    assert attach_dirs() == before  # no attach script was even written


# -- Python >= 3.14 (PEP 768): what CI can run without one --------------------------------------
# The attach itself, on a real Python 3.14, is benchmarks/check_python_attach.py.

PY_EXEC = (  # runs each file named on stdin as sys.remote_exec would: its code, in this process
    "import sys\n"
    "print('ready', flush=True)\n"
    "for line in sys.stdin:\n"
    "    path = line.strip()\n"
    "    if path:\n"
    "        exec(compile(open(path).read(), path, 'exec'), {'__name__': '__main__'})\n"
    "    print('done', sys.getallocatedblocks(), flush=True)\n"
)


def test_attach_python_refuses_an_older_python_before_touching_it(procs):
    target = procs([sys.executable, "-c", PY_USR1])
    assert target.stdout.readline().strip() == "ready"
    before = attach_dirs()
    with Receiver(lambda pid, fields: None) as receiver:
        with pytest.raises(InspectError, match=r"needs Python >= 3\.14 in that program"):
            attach_python(target.pid, receiver)
        assert receiver.counts()["connections"] == 0
    assert attach_dirs() == before
    not_signalled(target)
    assert threads(target.pid) == 1


def test_remote_exec_turns_the_interpreters_failure_into_one_line(procs):
    # The target's own interpreter makes the call when memdash runs on Python < 3.14; here it
    # is a 3.11, which has no sys.remote_exec: its traceback becomes one line.
    target = procs([sys.executable, "-c", PY_USR1])
    assert target.stdout.readline().strip() == "ready"
    with pytest.raises(InspectError) as refused:
        remote_exec(target.pid, os.devnull, exe=sys.executable)
    message = str(refused.value)
    assert message == (
        f"sys.remote_exec into process {target.pid} failed: "
        "AttributeError: module 'sys' has no attribute 'remote_exec'"
    )
    not_signalled(target)


def test_the_attach_script_reports_removes_itself_and_stops_with_the_receiver(procs):
    target = procs([sys.executable, "-c", PY_EXEC])
    assert target.stdout.readline().strip() == "ready"
    for attach in (1, 2):  # the second time after the first receiver went away
        heaps: list[dict] = []
        on_heap = partial(lambda got, pid, fields: got.append({"pid": pid, **fields}), heaps)
        with Receiver(on_heap) as receiver:
            script = attach_script(receiver.path)
            target.stdin.write(script + "\n")
            target.stdin.flush()
            printed = int(target.stdout.readline().split()[1])
            assert not os.path.exists(os.path.dirname(script))  # it removed itself
            wait_for(lambda: target.pid in receiver.pids_reporting(), 10, f"report {attach}")
            assert heaps[0]["pid"] == target.pid
            assert abs(heaps[0]["py_blocks"] - printed) / printed < 0.01
            assert threads(target.pid) == 2
        # the receiver's socket went away: the reporter thread ends, the program goes on
        wait_for(lambda: threads(target.pid) == 1, 10, "the reporter thread to end")
        target.stdin.write("\n")
        target.stdin.flush()
        assert target.stdout.readline().startswith("done")
