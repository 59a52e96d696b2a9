"""What the language-heap reporters (dashboard/reporters) cost the program they watch.

Three measurements, each with and without the reporter loaded (the environment from
``dashboard.reporters.child_env``, a real ``Receiver`` in this process):

1. CPU at 1 Hz: idle node / python processes (and python with MEMDASH_TRACEMALLOC=1) side by
   side for ``--seconds``; CPU time from /proc/PID/stat, as % of one core.
2. Start-up: wall time of ``node -e 0`` and ``python -c pass`` (median of ``--runs``,
   alternating with and without, so drift hits both alike).
3. A node ``http`` server under a bounded loopback load: a node client in its own process
   sends ``--requests`` keep-alive requests, ``--concurrency`` at a time, to 127.0.0.1;
   per-request latency p50/p99 (first 10% dropped as warm-up), ``--rounds`` alternating rounds.

Targets (issue 7): < 1% of a core, < 5 ms added start-up, p99 within 5%.

    .venv/bin/python benchmarks/bench_reporters.py [--seconds 12] [--runs 20] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import header, note, percentile, print_table, progress

from dashboard.reporters import Receiver, child_env

NODE = shutil.which("node") or "node"
PY = sys.executable

SERVER = """
const http = require('http');
const srv = http.createServer((req, res) => {  // a little work per request, like a JSON API
  const body = JSON.stringify({ path: req.url, t: Date.now(), items: [...Array(20).keys()] });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
process.stdin.on('end', () => process.exit(0)).resume();
"""

CLIENT = """
const http = require('http');
const [port, n, conc] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const lat = [];
let sent = 0;
function one() {
  if (sent >= n) return;
  sent++;
  const t = process.hrtime.bigint();
  http.get({ host: '127.0.0.1', port, path: '/item/' + sent, agent }, (res) => {
    res.resume();
    res.on('end', () => {
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (lat.length === n) { console.log(JSON.stringify(lat)); agent.destroy(); } else one();
    });
  });
}
for (let i = 0; i < conc; i++) one();
"""


def cpu_ns(pid: int) -> int:
    """CPU time of all of ``pid``'s threads in ns (schedstat: finer than /proc/PID/stat's
    10 ms ticks, which a 1 Hz reporter would hardly ever register)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            pass  # a thread that just ended
    return total


def cpu_cost(env: dict, seconds: float) -> list[list[str]]:
    idle = {
        "node": ([NODE, "-e", "setInterval(() => {}, 1 << 30)"], False),
        "python": ([PY, "-c", "import time; time.sleep(3600)"], False),
        "python + tracemalloc": ([PY, "-c", "import time; time.sleep(3600)"], True),
    }
    procs = {}
    for name, (argv, traced) in idle.items():
        with_env = child_env(env["MEMDASH_REPORT"], tracemalloc=traced)
        procs[(name, "without")] = subprocess.Popen(argv)
        procs[(name, "with")] = subprocess.Popen(argv, env=with_env)
    try:
        time.sleep(2)  # past start-up
        before = {k: cpu_ns(p.pid) for k, p in procs.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        used = {k: (cpu_ns(p.pid) - before[k]) / 1e9 for k, p in procs.items()}
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    rows = []
    for name in idle:
        without, with_ = used[(name, "without")], used[(name, "with")]
        rows.append(
            [
                name,
                f"{100 * without / elapsed:.3f}",
                f"{100 * with_ / elapsed:.3f}",
                f"{100 * (with_ - without) / elapsed:+.3f}",
            ]
        )
    return rows


def run_once(argv: list[str], env: dict | None) -> tuple[float, float]:
    """(wall s, CPU s) of one run; CPU (user + system, from wait4) suffers less than wall
    time from other load on a shared machine."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime


def startup(env: dict, runs: int) -> list[list[str]]:
    rows = []
    for name, argv in (("node -e 0", [NODE, "-e", "0"]), ("python -c pass", [PY, "-c", "pass"])):
        without, with_ = [], []
        run_once(argv, None), run_once(argv, env)  # warm the page cache
        for _ in range(runs):
            without.append(run_once(argv, None))
            with_.append(run_once(argv, env))
        row = [name]
        for i in (0, 1):  # wall, CPU
            a = statistics.median(r[i] for r in without) * 1e3
            b = statistics.median(r[i] for r in with_) * 1e3
            row += [f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f}"]
        rows.append(row)
    return rows


def http_round(env: dict | None, client: Path, server: Path, requests: int, conc: int):
    srv = subprocess.Popen(
        [NODE, str(server)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(srv.stdout.readline())
        time.sleep(1.2)  # the reporter has connected and sent a report or two
        out = subprocess.run(
            [NODE, str(client), str(port), str(requests), str(conc)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        srv.stdin.close()
        srv.wait(10)
    lat = json.loads(out)
    return lat[len(lat) // 10 :]


def http_latency(env: dict, rounds: int, requests: int, conc: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        server, client = Path(tmp, "server.js"), Path(tmp, "client.js")
        server.write_text(SERVER)
        client.write_text(CLIENT)
        got: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
        for i in range(rounds):
            for label, e in (("without", None), ("with", env)):
                progress(f"http round {i + 1}/{rounds} {label} reporter")
                lat = http_round(e, client, server, requests, conc)
                got[label].append((percentile(lat, 50), percentile(lat, 99)))
    rows = []
    for label in ("without", "with"):
        p50 = statistics.median(r[0] for r in got[label])
        p99 = statistics.median(r[1] for r in got[label])
        rows.append([label, f"{p50:.3f}", f"{p99:.3f}"])
    base, loaded = float(rows[0][2]), float(rows[1][2])
    rows[1].append(f"{100 * (loaded - base) / base:+.1f}%")
    rows[0].append("")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12, help="CPU window (default 12)")
    ap.add_argument("--runs", type=int, default=20, help="start-up runs each (default 20)")
    ap.add_argument("--rounds", type=int, default=3, help="http rounds each (default 3)")
    ap.add_argument("--requests", type=int, default=6000, help="per http round")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="short run (a smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.runs, args.rounds, args.requests = 4, 5, 1, 1500

    header("Language-heap reporters: cost to the program")
    reports = []
    with Receiver(lambda pid, fields: reports.append(pid)) as receiver:
        env = child_env(receiver.path)
        progress("CPU at 1 Hz")
        print_table(
            ["idle program", "CPU % without", "CPU % with", "added (% of a core)"],
            cpu_cost(env, args.seconds),
        )
        progress("start-up")
        print_table(
            ["command", "wall ms without", "with", "added", "CPU ms without", "with", "added"],
            startup(env, args.runs),
        )
        progress("http")
        print_table(
            ["node http server", "p50 ms", "p99 ms", "p99 change"],
            http_latency(env, args.rounds, args.requests, args.concurrency),
        )
        counts = receiver.counts()
    note(
        f"{counts['reports']} reports received over {counts['connections']} connections. "
        f"CPU: {args.seconds:g} s window, all threads, from schedstat. HTTP: "
        f"{args.requests} requests x {args.rounds} rounds, {args.concurrency} at a time, "
        "median of the rounds' percentiles; on a shared 2-core machine p99 noise between "
        "rounds is larger than the reporter's one write a second."
    )


if __name__ == "__main__":
    main()
