"""What the language-heap reporters (dashboard/reporters) cost the program they watch.

Three measurements, each with and without the reporter loaded (the environment from
``dashboard.reporters.child_env``, a real ``Receiver`` in this process):

1. CPU at 1 Hz: idle node / python processes (and python with MEMDASH_TRACEMALLOC=1) side by
   side for ``--seconds``; CPU time from /proc/PID/stat, as % of one core.
2. Start-up: wall time of ``node -e 0`` and ``python -c pass`` (median of ``--runs``,
   alternating with and without, so drift hits both alike).
3. A node ``http`` server under a bounded loopback load at a fixed rate: two servers, one
   with and one without the reporter, both pinned to one core; the load generator (node, its
   own process) on the other core issues ``--rate`` requests a second on schedule, whatever
   the answers, to the two servers in turn (``--concurrency`` keep-alive connections each;
   latency from each request's issue). After a warm-up, ``--rounds`` short rounds; the server
   that goes first flips every round. Each round gives a p99 for both servers over the same
   moments, so whatever else slows this shared machine hits both alike. Result: the median
   over rounds of (p99 with / p99 without - 1) and a 95 % CI from a bootstrap over rounds;
   "within 5 %" is shown when the CI's upper end is below +5 %.

Targets (issue 7): < 1% of a core, < 5 ms added start-up, p99 within 5%.

    .venv/bin/python benchmarks/bench_reporters.py [--seconds 12] [--runs 20] [--quick]
        [--rounds 50] [--round-seconds 2] [--rate 2000] [--skip cpu --skip startup]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import header, note, percentile, print_table, progress, wait_for

from dashboard.reporters import Receiver, child_env

NODE = shutil.which("node") or "node"
PY = sys.executable
SERVER_CPU, CLIENT_CPU = 1, 0  # the node server and its load generator never share a core

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
// Fixed request rate over two servers at once: request k is issued at start + k / rate (a
// timer tick per millisecond sends what is due) whatever the answers to earlier ones, to the
// two servers in turn, each over its own keep-alive connections; latency counts from its issue.
// Both servers see the same moments, so whatever else slows this machine hits both alike.
const http = require('http');
const [a, b, rate, seconds, conns] = process.argv.slice(2).map(Number);
const ports = [a, b];
const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: conns }));
const total = Math.round(rate * seconds), lat = [[], []];
let sent = 0, done = 0;
const start = process.hrtime.bigint() + 50000000n;  // 50 ms to settle
function tick() {
  while (sent < total && start + BigInt(Math.round(sent * 1e9 / rate)) <= process.hrtime.bigint()) {
    const i = sent % 2;
    sent++;
    const t = process.hrtime.bigint();
    const options = { host: '127.0.0.1', port: ports[i], path: '/item/' + sent, agent: agents[i] };
    http.get(options, (res) => {
      res.resume();
      res.on('end', () => {
        lat[i].push(Number(process.hrtime.bigint() - t) / 1e6);
        if (++done < total) return;
        console.log(JSON.stringify(lat));
        agents.forEach((g) => g.destroy());
      });
    });
  }
  if (sent < total) setTimeout(tick, 1);
}
tick();
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


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """``argv`` bound to one core, all its threads (taskset, util-linux, is on every Debian)."""
    return ["taskset", "-c", str(cpu), *argv]


def start_server(env: dict | None, script: Path) -> tuple[subprocess.Popen, int]:
    srv = subprocess.Popen(
        pinned(SERVER_CPU, [NODE, str(script)]),
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return srv, int(srv.stdout.readline())


def load(ports: list[int], client: Path, rate: int, seconds: float, conns: int):
    """Latencies (ms) of one round at ``rate`` requests/s in all, alternating between the
    servers on ``ports``: one list per server, the first 10 % of each (connections being
    opened) dropped."""
    argv = [NODE, str(client), *map(str, ports), str(rate), str(seconds), str(conns)]
    out = subprocess.run(
        pinned(CLIENT_CPU, argv), capture_output=True, text=True, check=True
    ).stdout
    return [lat[len(lat) // 10 :] for lat in json.loads(out)]


def change_ci(with_: list[float], without: list[float], runs: int = 2000):
    """The p99 change in %: the median over rounds of each round's p99 with / p99 without - 1,
    and a 95 % bootstrap CI of it (rounds resampled, seeded: the same data, the same CI). A
    median of paired rounds, because now and then the whole machine stalls for a second or
    more (other work on it): such a round moves it least; a p99 over all rounds together would
    be that stall's."""
    ratios = [100 * (a / b - 1) for a, b in zip(with_, without, strict=True)]
    rng = random.Random(7)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(runs))
    return statistics.median(ratios), medians[int(0.025 * runs)], medians[int(0.975 * runs)]


def http_latency(receiver: Receiver, env: dict, rounds: int, seconds: float, rate: int, conns: int):
    """Two servers, with and without the reporter, on one core; each short round loads both at
    once, request by request in turn (which one goes first flips every round), so each round
    gives both servers' latencies over the same moments. Returns (table rows, the p99 change
    and its 95 % CI, in %)."""
    with tempfile.TemporaryDirectory() as tmp:
        server, client = Path(tmp, "server.js"), Path(tmp, "client.js")
        server.write_text(SERVER)
        client.write_text(CLIENT)
        servers = {"without": start_server(None, server), "with": start_server(env, server)}
        try:
            pid = servers["with"][0].pid  # taskset execs node: the same pid
            wait_for(lambda: pid in receiver.pids_reporting(), 10, "the reporter's first report")
            ports = {label: port for label, (_, port) in servers.items()}
            progress("http warm-up")
            load(list(ports.values()), client, rate, 3.0, conns)
            got: dict[str, list[list[float]]] = {"without": [], "with": []}
            for i in range(rounds):
                order = ("without", "with") if i % 2 == 0 else ("with", "without")
                progress(f"http round {i + 1}/{rounds}")
                lats = load([ports[o] for o in order], client, rate, seconds, conns)
                for label, lat in zip(order, lats, strict=True):
                    got[label].append(lat)
        finally:
            for srv, _ in servers.values():
                srv.stdin.close()
                srv.wait(10)
    p99 = {label: [percentile(r, 99) for r in got[label]] for label in got}
    change = change_ci(p99["with"], p99["without"])
    rows = []
    for label in ("without", "with"):
        q1, q2, q3 = statistics.quantiles(p99[label], n=4)
        p50 = statistics.median(percentile(r, 50) for r in got[label])
        rows.append([label, f"{p50:.3f}", f"{q2:.2f} ({q1:.2f}-{q3:.2f})"])
    rows[0].append("")
    rows[1].append(f"{change[0]:+.1f}% (95% CI {change[1]:+.1f} .. {change[2]:+.1f})")
    return rows, change


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12, help="CPU window (default 12)")
    ap.add_argument("--runs", type=int, default=20, help="start-up runs each (default 20)")
    ap.add_argument("--rounds", type=int, default=50, help="http rounds (default 50)")
    ap.add_argument("--round-seconds", type=float, default=2.0, help="per http round")
    ap.add_argument(
        "--rate", type=int, default=2000, help="http requests a second, both servers together"
    )
    ap.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    ap.add_argument("--skip", choices=("cpu", "startup"), action="append", default=[])
    ap.add_argument("--quick", action="store_true", help="short run (a smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.runs, args.rounds, args.round_seconds = 4, 5, 2, 1.0

    header("Language-heap reporters: cost to the program")
    reports = []
    with Receiver(lambda pid, fields: reports.append(pid)) as receiver:
        env = child_env(receiver.path)
        if "cpu" not in args.skip:
            progress("CPU at 1 Hz")
            print_table(
                ["idle program", "CPU % without", "CPU % with", "added (% of a core)"],
                cpu_cost(env, args.seconds),
            )
        if "startup" not in args.skip:
            progress("start-up")
            print_table(
                ["command", "wall ms without", "with", "added", "CPU ms without", "with", "added"],
                startup(env, args.runs),
            )
        progress("http")
        rows, change = http_latency(
            receiver, env, args.rounds, args.round_seconds, args.rate, args.concurrency
        )
        print_table(
            ["node http server", "p50 ms", "p99 ms: median (IQR) of rounds", "p99 change"],
            rows,
        )
        counts = receiver.counts()
    verdict = "shown" if change[2] < 5.0 else "NOT shown"
    note(
        f"{counts['reports']} reports received over {counts['connections']} connections. "
        f"CPU: {args.seconds:g} s window, all threads, from schedstat. HTTP: {args.rate} "
        f"requests/s in all, to both servers in turn, for {args.round_seconds:g} s per round, "
        f"{args.concurrency} keep-alive connections to each; servers on core {SERVER_CPU}, "
        f"load generator on core {CLIENT_CPU}; {args.rounds} rounds after a 3 s warm-up. p50, "
        "p99: medians over the rounds. p99 change: the median over rounds of each round's "
        "p99 with / p99 without - 1, 95 % CI by a bootstrap over rounds (2000 resamples). "
        f"Target p99 within 5 %: {verdict} (shown when the CI's upper end, here "
        f"{change[2]:+.1f} %, is below +5 %)."
    )


if __name__ == "__main__":
    main()
