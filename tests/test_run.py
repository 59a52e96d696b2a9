"""`memdash run`: real Node and Python programs started through the real command, their heap read
back from the real server's samples; exit codes, signals, bad input. Nothing is mocked."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from dashboard.reporters import Receiver, child_env
from tests.conftest import ROOT, wait_for

PROGRAMS = ROOT / "tests" / "programs"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None and not os.environ.get("CI"), reason="node is not installed"
)


class Run:
    """``memdash run --no-browser --port 0 [options] -- CMD``; the program's stdin and stdout
    are pipes of this test (memdash passes its own through), memdash's lines go to a file."""

    def __init__(self, *argv: str, options: tuple[str, ...] = (), env: dict | None = None):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="memdash-run-", suffix=".txt")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "run", "--no-browser", "--port", "0"]
            + ["--interval", "0.05", *options, "--", *argv],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,  # no controlling terminal: a SIGINT is from kill, forwarded
        )
        found = wait_for(self._announced, 30, "memdash run to print its URL and pid")
        self.url, self.pid = f"http://127.0.0.1:{found[0]}", int(found[1])

    def _announced(self):
        text = self.output()
        port = re.search(r"serving on http://127\.0\.0\.1:(\d+)/\?cpid=(\d+)", text)
        if port is None and self.proc.poll() is not None:
            raise AssertionError(f"memdash run exited: {text}")
        return port and port.groups()

    def output(self) -> str:
        with open(self.log.name) as f:
            return f.read()

    def ask(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def samples(self, since: float = 0.0) -> list[dict]:
        reply = requests.get(
            f"{self.url}/api/processes/{self.pid}/samples",
            params={"children": 1, "since": since},
            timeout=10,
        )
        reply.raise_for_status()
        return reply.json()["samples"]

    def heap_samples(self, since: float) -> list[dict]:
        return [s for s in self.samples(since) if "heap_used" in s]

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


@pytest.fixture
def runs():
    started: list[Run] = []

    def start(*argv, **kw) -> Run:
        started.append(Run(*argv, **kw))
        return started[-1]

    yield start
    for run in started:
        run.close()


def check_heap_follows_the_program(run: Run, mib: int) -> None:
    """Three steps of ``mib`` MiB: the samples' heap_used rises and equals (within 1%) what
    the program printed about itself."""
    assert run.ask("hello")  # its reporter has started by now, and the program holds still
    seen = []
    for _ in range(3):
        printed = run.ask(f"grow {mib}")
        mark = time.time()
        # The first report after the print may have been taken before it (in flight); the one
        # after that was taken while the program held still.
        later = wait_for(lambda mark=mark: run.heap_samples(mark)[1:], 15, "two heap reports")
        sample = later[0]
        assert sample["heap_used"] == pytest.approx(printed["heap_used"], rel=0.01), (
            printed,
            sample,
        )
        seen.append(sample["heap_used"])
    assert seen[0] < seen[1] < seen[2]
    assert seen[2] - seen[0] > mib * 2**20


@needs_node
def test_node_program_heap_reaches_the_samples_and_matches_its_own_figures(runs):
    run = runs(NODE, "--expose-gc", str(PROGRAMS / "grow.js"))
    assert json.loads(run.proc.stdout.readline())["ready"] == run.pid
    assert run.ask("hello")["heap_used"] > 0
    # V8's heapUsed creeps by 100s of KiB while idle: 32 MiB steps keep that inside 1%.
    check_heap_follows_the_program(run, 32)
    run.proc.stdin.write("exit 0\n")
    run.proc.stdin.flush()
    assert run.wait() == 0


def test_python_program_heap_reaches_the_samples_and_matches_its_own_figures(runs):
    run = runs(sys.executable, str(PROGRAMS / "grow.py"), options=("--tracemalloc",))
    assert json.loads(run.proc.stdout.readline()) == {"ready": run.pid, "tracing": True}
    check_heap_follows_the_program(run, 8)
    run.proc.stdin.write("exit 0\n")
    run.proc.stdin.flush()
    assert run.wait() == 0


def test_exit_code_is_the_programs(runs):
    run = runs(sys.executable, str(PROGRAMS / "grow.py"))
    assert json.loads(run.proc.stdout.readline())["ready"] == run.pid
    assert run.ask("grow 1")["heap_used"] is None  # no --tracemalloc: no traced figure
    run.proc.stdin.write("exit 3\n")
    run.proc.stdin.flush()
    assert run.wait() == 3
    assert "exited with code 3" in run.output()
    assert "Traceback" not in run.output()


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_are_forwarded_and_end_with_128_plus_the_signal(runs, signum, code):
    # A program that would print if it got the signal and lets it end it by default
    program = "import signal, sys, os\nprint('ready', flush=True)\nsys.stdin.readline()\n"
    run = runs(sys.executable, "-c", program)
    assert run.proc.stdout.readline().strip() == "ready"
    run.proc.send_signal(signum)  # to memdash, not to the program
    assert run.wait() == code
    assert f"was ended by {signal.Signals(signum).name}" in run.output()


def test_keep_open_leaves_the_dashboard_up_until_ctrl_c(runs):
    run = runs(sys.executable, "-c", "print('bye')", options=("--keep-open",))
    wait_for(lambda: "stays open" in run.output(), 20, "the keep-open notice")
    assert requests.get(run.url + "/api/system", timeout=5).ok
    assert run.proc.poll() is None
    run.proc.send_signal(signal.SIGINT)
    assert run.wait() == 0


def memdash_run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "run", "--no-browser", "--port", "0", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize("args", [[], ["--"], ["--tracemalloc", "--"]])
def test_run_without_a_command_is_a_usage_error(args):
    result = memdash_run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memdash: error:"), result.stderr
    assert "no command" in lines[0]


def test_a_command_that_does_not_exist_exits_127():
    result = memdash_run("--", "no-such-command-memdash")
    assert result.returncode == 127
    assert result.stderr.strip() == "memdash: error: no-such-command-memdash: command not found"
    result = memdash_run("--", "./no/such/file")
    assert result.returncode == 127 and "no such file" in result.stderr


def test_user_node_options_and_pythonpath_are_kept_and_extended(runs, tmp_path):
    # Given a user's own PYTHONPATH (with a sitecustomize of theirs) and NODE_OPTIONS
    (tmp_path / "sitecustomize.py").write_text("import builtins\nbuiltins.USER_SITE = 'yes'\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "NODE_OPTIONS": "--max-old-space-size=123"}
    program = (
        "import builtins, json, os\n"
        "print(json.dumps({k: os.environ.get(k) for k in ('PYTHONPATH', 'NODE_OPTIONS')}"
        " | {'user_site': getattr(builtins, 'USER_SITE', None)}), flush=True)\n"
        "input()\n"
    )
    run = runs(sys.executable, "-c", program, env=env)
    seen = json.loads(run.proc.stdout.readline())
    # Then both are still there, extended with memdash's reporters, and theirs still runs
    assert seen["PYTHONPATH"].split(os.pathsep)[-1] == str(tmp_path)
    assert seen["NODE_OPTIONS"].startswith("--max-old-space-size=123 --require ")
    assert seen["user_site"] == "yes"
    # And the program reports (it is a Python program without --tracemalloc: no heap_used,
    # but the server knows it has a language heap: it sent figures)
    run.proc.stdin.write("\n")
    run.proc.stdin.flush()
    assert run.wait() == 0


def test_a_program_without_a_reporter_still_runs_and_is_sampled(runs):
    run = runs("sh", "-c", "read line; exit 5")
    wait_for(lambda: len(run.samples()) >= 3, 20, "samples of a shell")
    assert not any("heap_used" in s for s in run.samples())
    run.proc.stdin.write("\n")
    run.proc.stdin.flush()
    assert run.wait() == 5


# -- Find the leak over the reporter's connection (Receiver.request) --------------------------

LEAKY_PY = """
import sys, time
held = []
print("ready", flush=True)
while True:
    held.append("x" * 100_000)  # LEAK LINE
    time.sleep(0.01)
"""


@pytest.fixture
def receiver():
    got = {}
    r = Receiver(lambda pid, fields: got.setdefault(pid, fields)).start()
    yield r
    r.stop()


def spawn(argv, env):
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)


def test_python_leak_report_over_the_reporter_connection(receiver, tmp_path):
    script = tmp_path / "leaky.py"
    script.write_text(LEAKY_PY)
    proc = spawn([sys.executable, str(script)], child_env(receiver.path, tracemalloc=True))
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_for(lambda: proc.pid in receiver.pids_reporting(), 10, "the first report")
        reply = receiver.request(proc.pid, {"cmd": "leak_report", "seconds": 1}, 30)
        assert reply["type"] == "leak_report" and reply["seconds"] == 1
        top = reply["top"][0]
        line = LEAKY_PY.splitlines().index('    held.append("x" * 100_000)  # LEAK LINE') + 1
        assert (top["file"], top["line"], top["own"]) == (str(script), line, True)
        assert top["size_diff"] > 5 * 100_000  # ~100 strings a second of 100 kB
        assert {"rss_diff", "heap_diff", "pid"} <= set(reply)
    finally:
        proc.kill()
        proc.wait()


def test_python_leak_report_without_tracemalloc_is_refused_clearly(receiver):
    proc = spawn([sys.executable, "-c", LEAKY_PY], child_env(receiver.path))
    try:
        wait_for(lambda: proc.pid in receiver.pids_reporting(), 10, "the first report")
        from dashboard import errors

        with pytest.raises(errors.BadRequest, match="needs tracemalloc"):
            receiver.request(proc.pid, {"cmd": "leak_report", "seconds": 1}, 10)
        with pytest.raises(errors.Unavailable, match="does not report"):
            receiver.request(1, {"cmd": "leak_report"}, 1)
    finally:
        proc.kill()
        proc.wait()


LEAKY_JS = """
const held = [];
console.log('ready');
setInterval(() => { held.push(new Array(10000).fill(Math.random())); }, 10); // LEAK LINE
"""


@needs_node
def test_node_heap_snapshot_and_leak_report_over_the_reporter_connection(receiver, tmp_path):
    script = tmp_path / "leaky.js"
    script.write_text(LEAKY_JS)
    proc = spawn([NODE, str(script)], child_env(receiver.path))
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_for(lambda: receiver.runtime(proc.pid) == "node", 10, "the first report")
        reply = receiver.request(proc.pid, {"cmd": "leak_report", "seconds": 1.5}, 30)
        assert reply["type"] == "leak_report"
        assert reply["top"][0]["file"].endswith("leaky.js"), reply["top"][:3]
        assert reply["top"][0]["line"] == 4
        path = tmp_path / "x.heapsnapshot"
        reply = receiver.request(proc.pid, {"cmd": "heap_snapshot", "path": str(path)}, 60)
        assert reply["type"] == "heap_snapshot" and reply["size"] == path.stat().st_size
        assert "snapshot" in json.loads(path.read_text())
    finally:
        proc.kill()
        proc.wait()
