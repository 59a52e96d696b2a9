"""Language-heap reporters (dashboard/reporters): real Node and Python programs, a real receiver
on a real Unix socket. Nothing is mocked; every wait polls with a deadline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_for

from dashboard.reporters import FIELDS, Receiver, child_env
from dashboard.reporters.env import NODE_REPORTER, PYTHON_DIR, node_options, python_path

NODE = shutil.which("node") or "node"


class Recorder:
    """A started Receiver whose callback keeps every report with the time it arrived."""

    def __init__(self, **kw):
        self.cond = threading.Condition()
        self.reports: list[tuple[float, int, dict]] = []
        self.receiver = Receiver(self._got, **kw).start()
        self.path = self.receiver.path

    def _got(self, pid: int, fields: dict) -> None:
        with self.cond:
            self.reports.append((time.monotonic(), pid, fields))

    def of(self, pid: int, after: float = 0.0) -> list[dict]:
        with self.cond:
            return [f for t, p, f in self.reports if p == pid and t > after]

    def next_after(self, pid: int, after: float, timeout: float = 10) -> dict:
        return wait_for(lambda: (self.of(pid, after) or [None])[0], timeout, message=f"{pid}")

    def env(self, **kw) -> dict:
        return child_env(self.path, **kw)


@pytest.fixture
def rec():
    r = Recorder()
    yield r
    r.receiver.stop()


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def spawn(procs, argv, env, **kw) -> subprocess.Popen:
    kw.setdefault("stdin", subprocess.PIPE)
    kw.setdefault("stdout", subprocess.PIPE)
    p = subprocess.Popen(argv, env=env, text=True, bufsize=1, **kw)
    procs.append(p)
    return p


def ask(p: subprocess.Popen, command: str) -> dict:
    p.stdin.write(command + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


# -- heap figures match what the program itself says -----------------------------------------

# After each "grow" the program collects garbage, prints its own figures and then holds still
# (blocked reading stdin), so the next report describes the same heap.
NODE_GROWER = """
const held = [];
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const mib = Number(line.split(' ')[1]);
  for (let i = 0; i < mib * 16; i++) held.push(new Array(8192).fill(i)); // ~64 KiB each
  global.gc();
  console.log(JSON.stringify({ heap_used: process.memoryUsage().heapUsed }));
});
"""

PY_GROWER = """
import gc, json, sys, tracemalloc
held = []
for line in sys.stdin:
    mib = int(line.split()[1])
    held.extend(str(i) * 1000 for i in range(mib * 1024))  # ~1 KiB strings
    gc.collect()
    current = tracemalloc.get_traced_memory()[0]
    print(json.dumps({"heap_used": current, "py_blocks": sys.getallocatedblocks()}), flush=True)
"""


def check_growth(rec: Recorder, p: subprocess.Popen, mib: int, keys=("heap_used",)) -> None:
    """Three steps of ``mib`` MiB each: figures rise and match the program's within 1%."""
    seen = []
    for _ in range(3):
        printed = ask(p, f"grow {mib}")
        # The first report to arrive may have been taken before the print (it was in flight);
        # the one after it was taken a second later, while the program held still.
        mark = time.monotonic()
        rec.next_after(p.pid, mark)
        reported = wait_for(lambda mark=mark: rec.of(p.pid, mark)[1:], 10)[0]
        for key in keys:
            assert reported[key] == pytest.approx(printed[key], rel=0.01), (key, printed, reported)
        seen.append(reported)
    for key in keys:
        assert seen[0][key] < seen[1][key] < seen[2][key]
    assert seen[2]["heap_used"] - seen[0]["heap_used"] > mib * 2**20


def test_node_heap_rises_and_matches_what_the_program_prints(rec, procs, tmp_path):
    script = tmp_path / "grow.js"
    script.write_text(NODE_GROWER)
    p = spawn(procs, [NODE, "--expose-gc", str(script)], rec.env())
    # V8's heapUsed creeps by some 100s of KiB while a program idles (with or without the
    # reporter): steps of 32 MiB keep that well inside the 1% the figures must match to.
    check_growth(rec, p, 32)
    report = rec.of(p.pid)[-1]
    assert {"heap_total", "external", "array_buffers", "heap_limit"} <= set(report)
    assert report["heap_used"] <= report["heap_total"] < report["heap_limit"]
    assert rec.receiver.runtime(p.pid) == "node"


def test_python_heap_rises_and_matches_what_the_program_prints(rec, procs, tmp_path):
    script = tmp_path / "grow.py"
    script.write_text(PY_GROWER)
    p = spawn(procs, [sys.executable, str(script)], rec.env(tracemalloc=True))
    check_growth(rec, p, 8, keys=("heap_used", "py_blocks"))
    report = rec.of(p.pid)[-1]
    assert report["traced_current"] == report["heap_used"]
    assert report["traced_peak"] >= report["traced_current"]
    assert {"gc_gen0", "gc_collections"} <= set(report)
    assert rec.receiver.runtime(p.pid) == "python"


def test_python_without_tracemalloc_sends_counts_but_no_heap(rec, procs):
    p = spawn(procs, [sys.executable, "-c", "import sys; sys.stdin.read()"], rec.env())
    report = rec.next_after(p.pid, 0)
    assert report["py_blocks"] > 1000 and "heap_used" not in report and "traced_peak" not in report


# -- children that inherit the environment report as processes of their own --------------------

PY_FORKS = """
import multiprocessing, os, sys
def child(q, done):
    q.put(os.getpid())
    done.wait(30)
if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    q, done = multiprocessing.Queue(), multiprocessing.Event()
    mp = multiprocessing.Process(target=child, args=(q, done))
    mp.start()
    pid = os.fork()
    if pid == 0:
        os.read(0, 1)
        os._exit(0)
    print(mp.pid, pid, q.get(), flush=True)
    sys.stdin.read()
    done.set()
    os.waitpid(pid, 0)
    mp.join()
"""


def test_python_fork_and_multiprocessing_children_report(rec, procs, tmp_path):
    script = tmp_path / "forks.py"
    script.write_text(PY_FORKS)
    # Python >= 3.12 warns on stderr when a multi-threaded process forks: the reporter's
    # thread must be stopped around fork, so not even an "always" filter shows a warning.
    argv = [sys.executable, "-W", "always::DeprecationWarning", str(script)]
    p = spawn(procs, argv, rec.env(), stderr=subprocess.PIPE)
    mp_pid, fork_pid, _ = map(int, p.stdout.readline().split())
    want = {p.pid, mp_pid, fork_pid}
    wait_for(lambda: want <= rec.receiver.pids_reporting(), 10, message=f"reports from {want}")
    assert rec.receiver.pids_reporting() == want
    # the parent still reports after forking (its thread came back)
    rec.next_after(p.pid, time.monotonic())
    p.stdin.close()
    assert p.wait(10) == 0
    assert p.stderr.read() == ""


NODE_CLUSTER = """
const cluster = require('cluster');
if (cluster.isPrimary) {
  const pids = [];
  for (let i = 0; i < 2; i++) cluster.fork().on('online', function () {
    pids.push(this.process.pid);
    if (pids.length === 2) console.log(pids.join(' '));
  });
  process.stdin.on('end', () => { for (const id in cluster.workers) cluster.workers[id].kill(); });
  process.stdin.resume();
} else {
  setInterval(() => {}, 1000);
}
"""


def test_node_cluster_primary_and_two_workers_report(rec, procs, tmp_path):
    script = tmp_path / "cluster.js"
    script.write_text(NODE_CLUSTER)
    p = spawn(procs, [NODE, str(script)], rec.env())
    want = {p.pid, *map(int, p.stdout.readline().split())}
    assert len(want) == 3
    wait_for(lambda: want <= rec.receiver.pids_reporting(), 10, message=f"reports from {want}")
    assert rec.receiver.pids_reporting() == want
    p.stdin.close()
    assert p.wait(10) == 0


def test_node_worker_threads_do_not_report_for_the_process(rec, procs):
    code = """
    const { Worker } = require('worker_threads');
    new Worker('setInterval(() => {}, 1000)', { eval: true });
    process.stdin.resume();
    """
    p = spawn(procs, [NODE, "-e", textwrap.dedent(code)], rec.env())
    first = rec.next_after(p.pid, 0)
    rec.next_after(p.pid, time.monotonic())  # a second report: the worker had time to start
    assert rec.receiver.counts()["connections"] == 1
    assert first["heap_used"] > 0


# -- the user's own settings are kept --------------------------------------------------------


def test_existing_sitecustomize_and_pythonpath_are_kept(rec, procs, tmp_path):
    user = tmp_path / "user lib"
    user.mkdir()
    (user / "sitecustomize.py").write_text("import builtins\nbuiltins.USER_SITE_RAN = True\n")
    (user / "usermod.py").write_text("X = 42\n")
    env = child_env(rec.path, base={**os.environ, "PYTHONPATH": str(user)})
    assert env["PYTHONPATH"] == os.pathsep.join([str(PYTHON_DIR), str(user)])
    code = (
        "import builtins, json, sys, sitecustomize, usermod\n"
        "print(json.dumps([builtins.USER_SITE_RAN, sitecustomize.__file__, usermod.X,"
        " '_memdash_reporter' in sys.modules]))\n"
        "sys.stdin.read()\n"
    )
    p = spawn(procs, [sys.executable, "-c", code], env)
    ran, site_file, x, ours = json.loads(p.stdout.readline())
    assert ran is True and site_file == str(user / "sitecustomize.py") and x == 42 and ours
    rec.next_after(p.pid, 0)


def test_existing_node_options_are_kept_and_paths_with_spaces_quoted(rec, procs, tmp_path):
    spaced = tmp_path / "with space"
    spaced.mkdir()
    reporter = spaced / "node_reporter.cjs"
    shutil.copy(NODE_REPORTER, reporter)
    (spaced / "user preload.js").write_text("globalThis.USER_PRELOAD = 1;\n")
    existing = '--max-old-space-size=96 --require "' + str(spaced / "user preload.js") + '"'
    env = child_env(rec.path, base={**os.environ, "NODE_OPTIONS": existing})
    assert env["NODE_OPTIONS"].startswith(existing + " --require ")
    assert child_env(rec.path, base=env)["NODE_OPTIONS"] == env["NODE_OPTIONS"]  # not twice
    env["NODE_OPTIONS"] = node_options(existing, reporter)  # the copy in a spaced directory
    code = "console.log(globalThis.USER_PRELOAD); process.stdin.resume();"
    p = spawn(procs, [NODE, "-e", code], env)
    assert p.stdout.readline().strip() == "1"
    report = rec.next_after(p.pid, 0)
    assert report["heap_limit"] < 200 * 2**20  # --max-old-space-size=96 still applies


def test_env_helpers():
    assert python_path("", Path("/r")) == "/r"
    assert python_path("/a::/b", Path("/r")) == os.pathsep.join(["/r", "/a", "/b"])
    assert python_path("/r:/a", Path("/r")) == os.pathsep.join(["/r", "/a"])
    assert node_options(None, Path("/r/x.cjs")) == "--require /r/x.cjs"
    assert node_options("--inspect", Path('/a b/"q"\\.cjs')) == (
        '--inspect --require "/a b/\\"q\\"\\\\.cjs"'
    )
    env = child_env("/s", tracemalloc=True, base={"MEMDASH_TRACEMALLOC": "0"})
    assert env["MEMDASH_REPORT"] == "/s" and env["MEMDASH_TRACEMALLOC"] == "1"
    assert "MEMDASH_TRACEMALLOC" not in child_env("/s", base={"MEMDASH_TRACEMALLOC": "1"})


# -- the program is unaffected -----------------------------------------------------------------


@pytest.mark.parametrize("receiver_up", [True, False], ids=["receiver", "no-receiver"])
def test_output_and_exit_code_are_the_program_own(rec, tmp_path, receiver_up):
    env = rec.env(tracemalloc=True)
    if not receiver_up:
        env["MEMDASH_REPORT"] = str(tmp_path / "nobody-listens.sock")
    cases = [
        ([NODE, "-e", "console.log('hi'); process.exitCode = 7"], "hi\n", 7),
        (
            [NODE, "-e", "setTimeout(() => { console.log('late'); process.exit(3) }, 1500)"],
            "late\n",
            3,
        ),
        ([NODE, "-e", "setTimeout(() => console.log('done'), 1200)"], "done\n", 0),
        ([sys.executable, "-c", "print('hi'); raise SystemExit(5)"], "hi\n", 5),
        ([sys.executable, "-c", "import time; time.sleep(1.2); print('done')"], "done\n", 0),
    ]
    for argv, out, code in cases:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        assert (done.stdout, done.stderr, done.returncode) == (out, "", code), argv
    npm = shutil.which("npm")
    assert npm, "npm is needed (make setup installs the JS assets with it)"
    plain = subprocess.run([npm, "--version"], capture_output=True, text=True, timeout=60)
    with_reporter = subprocess.run(
        [npm, "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (with_reporter.stdout, with_reporter.returncode) == (plain.stdout, 0)


def test_reporters_go_quiet_when_the_receiver_stops(rec, procs):
    hold = "import sys; sys.stdin.read(); print('bye')"
    py = spawn(procs, [sys.executable, "-c", hold], rec.env(), stderr=subprocess.PIPE)
    js = "process.stdin.resume(); process.stdin.on('end', () => console.log('bye'))"
    node = spawn(procs, [NODE, "-e", js], rec.env(), stderr=subprocess.PIPE)
    rec.next_after(py.pid, 0)
    rec.next_after(node.pid, 0)
    rec.receiver.stop()
    assert not os.path.exists(rec.path) and not os.path.exists(os.path.dirname(rec.path))
    for p in (py, node):
        out, err = p.communicate("", timeout=10)
        assert (out, err, p.returncode) == ("bye\n", "", 0)


# -- untrusted input -------------------------------------------------------------------------


def connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def test_garbage_is_ignored_and_the_sender_is_the_kernel_peer(rec):
    me = os.getpid()
    with connect(rec.path) as s:
        s.sendall(
            b"not json\n[1, 2]\n\xff\xfe\n"
            b'{"heap_used": "12"}\n{"heap_used": true}\n{"heap_used": -1}\n{"heap_used": 1.5}\n'
            + b'{"heap_used": '
            + b"9" * 8000
            + b"}\n"  # over-long line
            + b"x" * 20000
            + b"\n"  # over-long, arriving in several reads
            + b'{"pid": 1, "runtime": "cobol", "heap_used": 7, "evil": 1, "rss": 3}\n'
        )
        wait_for(lambda: rec.of(me), 10, message="the one valid report")
    assert rec.of(me) == [{"heap_used": 7}]  # unknown keys and the sample's own rss left out
    init = 1  # the pid the garbage line claimed: the kernel's peer pid counts, not a claim
    assert init not in rec.receiver.pids_reporting()
    assert rec.receiver.runtime(me) is None
    assert rec.receiver.counts()["garbage"] == 9  # 7 bad lines, 2 over-long
    assert "rss" not in FIELDS and "heap_used" in FIELDS


def test_a_flood_is_rate_limited_and_others_keep_reporting(rec, procs):
    hold = "import sys; sys.stdin.read()"
    py = spawn(procs, [sys.executable, "-c", hold], rec.env())
    rec.next_after(py.pid, 0)

    stop = threading.Event()
    line = b'{"runtime": "node", "heap_used": 12345, "heap_total": 23456}\n' * 200

    def flood():
        with connect(rec.path) as s:
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    s.sendall(line)
                except TimeoutError:
                    pass  # the receiver stopped reading us: exactly what it should do

    flooder = threading.Thread(target=flood, daemon=True)
    started = time.monotonic()
    flooder.start()
    # while the flood goes on, the real reporter's reports keep arriving
    mark = time.monotonic()
    wait_for(lambda: len(rec.of(py.pid, mark)) >= 3, 15, message="3 reports during the flood")
    stop.set()
    flooder.join(5)
    elapsed = time.monotonic() - started
    passed = len(rec.of(os.getpid()))
    assert 0 < passed <= 5 * elapsed + 6  # 5 a second, plus the initial burst
    assert rec.receiver.counts()["dropped"] > 100
    # and the receiver still takes new connections afterwards
    with connect(rec.path) as s:
        s.sendall(b'{"heap_used": 99}\n')
        wait_for(lambda: {"heap_used": 99} in rec.of(os.getpid()), 10, message="after flood")
