"""The memdash command: usage errors are one line and exit 2; signals shut it down cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
import requests

from tests.conftest import ROOT, free_port, wait_for


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp) with a listening socket on ``port``."""
    found = set()
    with open("/proc/net/tcp") as f:
        for line in list(f)[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def memdash(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "--no-browser", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--pid", "abc"], "--pid abc: pid must be an integer"),
        (["--pid", "-3"], "out of range"),
        (["--pid", "2"], "kernel thread"),
        (["--interval", "0.001"], "--interval must be between"),
        (["--interval", "60"], "--interval must be between"),
        (["--port", "70000"], "--port must be between"),
        (["--history", "5"], "--history must be between"),
        (["--interval", "fast"], "--interval must be a number"),
        (["--port", "http"], "--port must be a whole number"),
        (["--interval", "0.5", "--detail-interval", "0.2"], "--detail-interval must be between"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, fragment):
    result = memdash(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memdash: error:"), result.stderr
    assert fragment in lines[0]


def test_port_in_use_is_a_usage_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = memdash("--port", str(taken.getsockname()[1]))
    assert result.returncode == 2
    assert "is in use" in result.stderr and "Traceback" not in result.stderr


def test_vanished_pid_is_a_usage_error():
    gone = subprocess.Popen(["true"])
    gone.wait()
    result = memdash("--pid", str(gone.pid))
    assert result.returncode == 2 and "no process" in result.stderr


def test_serves_on_loopback_records_pids_from_the_start_and_stops_on_sigterm(allocator):
    # Given memdash started with --pid
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard",
            "--no-browser",
            "--port",
            str(port),
            "--pid",
            str(allocator.pid),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        # Then it prints the URL (loopback, with the pid in it)
        assert f"http://127.0.0.1:{port}/?pid={allocator.pid}" in line
        # And it records the pid before any viewer connects
        url = f"http://127.0.0.1:{port}/api/processes/{allocator.pid}/samples"
        wait_for(
            lambda: len(requests.get(url, timeout=2).json()["samples"]) >= 5,
            message="history of the --pid process",
        )
        # And it listens on loopback only
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, as /proc/net/tcp writes it
    finally:
        # When it gets SIGTERM
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    # Then it exits cleanly, without a traceback
    assert code == 0
    assert "Traceback" not in proc.stderr.read()


def test_help_names_the_subcommands_and_run_has_its_own():
    top = memdash("--help")
    assert top.returncode == 0 and "memdash run [options] -- CMD ARGS" in top.stdout
    assert "--inspect" in top.stdout
    run = subprocess.run(
        [sys.executable, "-m", "dashboard", "run", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0
    assert "usage: memdash run [options] -- CMD ARGS" in run.stdout
    assert "--tracemalloc" in run.stdout and "--keep-open" in run.stdout


def test_the_entry_points_stay_where_they_were():
    # The console script is dashboard.__main__:main; the benchmarks import bind_socket/serve.
    from dashboard.__main__ import bind_socket, main, serve

    assert callable(main) and callable(bind_socket) and callable(serve)
    # A subcommand without a server loads Flask only when it runs
    code = "import sys, dashboard.__main__, dashboard.cli; print('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
