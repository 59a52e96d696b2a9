"""`memdash --pid PID --inspect`: real node processes, their real inspector over the Chrome
DevTools Protocol, the real server; and every refusal, checked to come before any signal."""

from __future__ import annotations

import errno
import json
import shutil
import socket
import subprocess
import time

import psutil
import pytest

from dashboard.inspector import Inspector
from tests._inspect import memdash, not_signalled, one_line_error
from tests.conftest import ROOT, Server, wait_for

PROGRAMS = ROOT / "tests" / "programs"
NODE = shutil.which("node") or "node"
PORT = 9229  # where SIGUSR1 opens a node inspector by default


def listening(pid: int) -> set[int]:
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return set()
    return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}


def node(procs, code: str) -> subprocess.Popen:
    """``node -e code`` that has printed "ready" (so its SIGUSR1 handling is in place)."""
    p = procs([NODE, "-e", f"{code}; console.log('ready')"])
    assert p.stdout.readline().strip() == "ready"
    return p


def heap_samples(server: Server, pid: int, since: float = 0.0) -> list[dict]:
    samples = server.get(f"/api/processes/{pid}/samples", params={"since": since}).json()
    return [s for s in samples["samples"] if "heap_used" in s]


def free_9229() -> None:
    if PORT in {c.laddr.port for c in psutil.net_connections("tcp") if c.status == "LISTEN"}:
        pytest.fail(f"port {PORT} is in use on this machine; the attach tests need it free")


# -- attach, heap, detach ---------------------------------------------------------------------


def test_attach_to_a_plain_node_reads_its_heap_then_closes_the_inspector(procs):
    free_9229()
    # Given a plain node process, with no inspector open
    target = node(procs, "setInterval(() => {}, 1000)")
    assert listening(target.pid) == set()
    # When memdash attaches to it
    with Server("--pid", str(target.pid), "--inspect") as server:
        assert f"attached to node {target.pid} (inspector opened on 127.0.0.1:{PORT})" in (
            server.output()
        )
        assert PORT in listening(target.pid)
        # Then its heap arrives in the samples, once a second
        samples = wait_for(lambda: heap_samples(server, target.pid)[1:], 15, "two heap samples")
        assert all(s["heap_used"] <= s["heap_total"] and s["external"] > 0 for s in samples)
    # And when memdash stops, the inspector it opened is closed again, the program still runs
    wait_for(lambda: PORT not in listening(target.pid), 10, "the inspector port to close")
    assert target.poll() is None


def test_attached_heap_matches_what_the_program_prints(procs):
    free_9229()
    target = procs([NODE, "--expose-gc", str(PROGRAMS / "grow.js")])
    assert json.loads(target.stdout.readline())["ready"] == target.pid
    with Server("--pid", str(target.pid), "--inspect") as server:
        wait_for(lambda: heap_samples(server, target.pid), 15, "a heap sample")
        seen = []
        for _ in range(3):
            target.stdin.write("grow 32\n")
            target.stdin.flush()
            printed = json.loads(target.stdout.readline())
            mark = time.time()
            later = wait_for(lambda m=mark: heap_samples(server, target.pid, m)[1:], 15, "heap")
            assert later[0]["heap_used"] == pytest.approx(printed["heap_used"], rel=0.01)
            seen.append(later[0]["heap_used"])
        assert seen[0] < seen[1] < seen[2]
    wait_for(lambda: PORT not in listening(target.pid), 10, "the inspector port to close")


def test_an_inspector_already_open_is_used_and_left_open(procs):
    # Given node started with its inspector open on a port of its own choosing
    target = procs([NODE, "--inspect=127.0.0.1:0", "-e", "setInterval(() => {}, 1000)"])
    port = wait_for(lambda: listening(target.pid), 10, "node's own inspector")
    got = []
    inspector = Inspector(target.pid, lambda pid, fields: got.append(fields)).attach()
    try:
        assert inspector.status() == {
            "attached": True,
            "port": min(port),
            "opened_by_memdash": False,
        }
        wait_for(lambda: got, 10, "a heap figure")
    finally:
        inspector.detach()
    assert inspector.status()["attached"] is False
    assert listening(target.pid) == port  # not ours to close


def test_heap_snapshot_and_leak_report_through_the_inspector(procs, tmp_path):
    free_9229()
    script = tmp_path / "leaky.js"
    script.write_text(
        "const held = [];\nconsole.log('ready');\n"
        "setInterval(() => { held.push(new Array(10000).fill(Math.random())); }, 10);\n"
    )
    target = procs([NODE, str(script)])
    assert target.stdout.readline().strip() == "ready"
    inspector = Inspector(target.pid, lambda pid, fields: None).attach()
    try:
        report = inspector.leak_report(1.5)
        assert report["type"] == "leak_report" and report["pid"] == target.pid
        top = report["top"][0]
        assert top["file"] == str(script) and top["line"] == 3, report["top"][:3]
        assert top["size"] == top["size_diff"] > 0
        path = tmp_path / "node.heapsnapshot"
        result = inspector.heap_snapshot(path)
        assert result["size"] == path.stat().st_size > 0
        assert "snapshot" in json.loads(path.read_text())  # what DevTools opens
    finally:
        inspector.detach()
    wait_for(lambda: PORT not in listening(target.pid), 10, "the inspector port to close")


# -- refusals: before any signal --------------------------------------------------------------


def test_inspect_refuses_a_process_that_is_not_node(procs):
    target = procs(["sleep", "60"])
    one_line_error(memdash("--pid", str(target.pid), "--inspect"), "is not node")
    assert target.poll() is None  # SIGUSR1's default action would have ended it


def test_inspect_refuses_a_zombie():
    zombie = subprocess.Popen(["true"])
    wait_for(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE, 10)
    try:
        one_line_error(memdash("--pid", str(zombie.pid), "--inspect"), "zombie")
    finally:
        zombie.wait()


def test_inspect_refuses_a_pid_that_does_not_exist():
    gone = subprocess.Popen(["true"])
    gone.wait()
    one_line_error(memdash("--pid", str(gone.pid), "--inspect"), "no process")


def test_inspect_needs_a_pid():
    one_line_error(memdash("--inspect"), "--inspect needs --pid")


def test_inspect_refuses_when_the_inspector_port_is_taken(procs):
    # Given something else on 127.0.0.1:9229 (this test's listener, or whoever already is)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAITs, as node
    try:
        taken.bind(("127.0.0.1", PORT))
        taken.listen()
    except OSError as e:
        taken.close()
        taken = None
        assert e.errno == errno.EADDRINUSE
        listeners = psutil.net_connections("tcp")
        # taken already by a listener: the condition under test holds
        assert any(c.laddr.port == PORT and c.status == "LISTEN" for c in listeners)
    try:
        target = node(
            procs,
            "process.on('SIGUSR1', () => console.log('usr1')); "
            "require('readline').createInterface({input: process.stdin})"
            ".on('line', () => console.log('pong'))",
        )
        # Then memdash says so, and the target got no signal
        one_line_error(memdash("--pid", str(target.pid), "--inspect"), f"port {PORT}")
        not_signalled(target)
    finally:
        if taken is not None:
            taken.close()


def test_inspect_gives_up_when_the_inspector_does_not_open_in_5_s(procs):
    free_9229()
    # A node whose own SIGUSR1 listener replaces the inspector's
    target = node(
        procs, "process.on('SIGUSR1', () => console.log('usr1')); setInterval(() => {}, 1000)"
    )
    one_line_error(memdash("--pid", str(target.pid), "--inspect"), "within 5 s")
    assert target.stdout.readline().strip() == "usr1"  # it was asked, once
    assert target.poll() is None


def test_inspect_says_when_the_target_exits_mid_attach(procs):
    free_9229()
    target = node(
        procs, "process.on('SIGUSR1', () => process.exit(7)); setInterval(() => {}, 1000)"
    )
    one_line_error(
        memdash("--pid", str(target.pid), "--inspect"), "exited while memdash was attaching"
    )
    assert target.wait(10) == 7
