"""Room mode: many viewers of one memdash server (issue 11's performance targets).

Cases (``--case``, default all):

- ``room``: ``--viewers`` (100) audience viewers each watching ``--pids`` (5) idle processes at
  10 Hz: server CPU (% of one core, psutil over the window), the share of the expected samples
  each viewer received (min and mean), and the latency from a sample's ``t`` to its arrival
  (p50/p95/p99 over every sample of every viewer). ``--big`` (300) repeats it with more viewers.
- ``storm``: ``--storm`` (100) viewers connecting within one second (each at its own moment
  spread over the second), on a fresh server and on one that has served 50 viewers for
  ``--served`` seconds (they disconnect, then the storm comes): how many connected within 10 s.
- ``late``: ``--storm`` viewers joining at once a session of 5 processes with 30 minutes of
  history each, while 10 viewers watch: time until every joiner has its watch acks (drawing),
  the acks' size, and the 10 watchers' p95 meanwhile. The history is filled before serving
  (benchmarks/_prefilled_server.py: the real app and server, 18,000 samples per process
  appended to each history, 10 Hz spacing ending now), not by waiting 30 minutes.
- ``stalled``: 10 watching viewers and one that stops reading after its watch (a raw socket
  whose receive buffer is shrunk and never read): server RSS growth over ``--stall`` seconds
  (60), whether and when the server dropped it (its log), and the others' sample share and p95.

Viewers are ``_common.RawViewer`` (one WebSocket, one reader thread, a timestamp as each frame
arrives), spread over ``--procs`` (4) client processes so the clients' own GIL is not the
bottleneck. The machine has 2 cores shared with the clients (and, while this was written, with
other work): absolute CPU and latency figures are noisy; compare runs made back to back.

    .venv/bin/python benchmarks/bench_room.py [--case room,big,storm,late,stalled] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import socket
import subprocess
import sys
import threading
import time

import psutil
from _common import (
    HERE,
    IdleProcesses,
    MiB,
    RawViewer,
    header,
    note,
    percentile,
    print_table,
    progress,
    wait_for,
)

from dashboard.testing import Server

INTERVAL = 0.1


# -- client processes -----------------------------------------------------------------------


def _viewers(url: str, n: int, pids: list[int], at: float, spread: float, window, go: float):
    """In a client process: ``n`` RawViewers connecting at ``at`` + i * spread / n (epoch),
    each watching ``pids``; record samples arriving between ``go`` and ``go + seconds`` (set
    by the caller through the return of the first phase). Returns the viewers and their logs."""
    logs = [[] for _ in range(n)]
    viewers: list = [None] * n
    connected = [None] * n
    acked = [None] * n
    errors: list[str] = []

    def run(i: int) -> None:
        delay = at + i * spread / max(1, n) - time.time()
        if delay > 0:
            time.sleep(delay)
        started = time.time()
        try:
            v = RawViewer(url, on_samples=lambda r, b, i=i: logs[i].append((r, b["samples"])))
            connected[i] = time.time() - started
            for pid in pids:
                ack = v.watch(pid, window=window)
                if "error" in ack:
                    errors.append(str(ack["error"]))
            acked[i] = time.time() - started
            viewers[i] = v
        except Exception as e:  # a refused or timed-out connection is a result, not a crash
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return viewers, logs, connected, acked, errors, threads


def client(url, n, pids, at, spread, window, go, seconds, close_after=True) -> dict:
    viewers, logs, connected, acked, errors, threads = _viewers(
        url, n, pids, at, spread, window, go
    )
    for t in threads:
        t.join(max(0.0, at + spread + 30 - time.time()))
    time.sleep(max(0.0, go + seconds - time.time()))
    counts, latencies = [], []
    for log in logs:
        got = 0
        for received, samples in list(log):
            for s in samples:
                if go <= s["t"] < go + seconds:
                    got += 1
                    latencies.append(received - s["t"])
        counts.append(got)
    if close_after:
        for v in viewers:
            if v is not None:
                v.close()
    return {
        "counts": counts,
        "latencies": latencies,
        "connected": connected,
        "acked": acked,
        "errors": errors,
    }


def spread_clients(url, n, pids, procs, *, at, spread, window, go, seconds) -> dict:
    """Run ``n`` viewers over ``procs`` client processes; merge their results."""
    ctx = multiprocessing.get_context("spawn")
    procs = max(1, min(procs, n))
    sizes = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    with ctx.Pool(procs) as pool:
        jobs = [
            pool.apply_async(client, (url, k, pids, at, spread, window, go, seconds)) for k in sizes
        ]
        parts = [j.get(timeout=go + seconds + 120 - time.time()) for j in jobs]
    return {key: [x for p in parts for x in p[key]] for key in parts[0]}


# -- cases ----------------------------------------------------------------------------------


def cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def case_room(idle: IdleProcesses, viewers: int, pids: int, args) -> list:
    # --max-viewers defaults to 200: a larger room is asked for, as a presenter would.
    with Server("--max-viewers", str(max(200, viewers)), interval=INTERVAL) as server:
        sp = psutil.Process(server.pid)
        progress(f"room: {viewers} viewers x {pids} PIDs, {args.seconds:.0f} s")
        at = time.time() + 3  # client processes start (spawn) meanwhile
        connect = 2 + viewers / 50  # connect over a few seconds, then settle
        go = at + connect + args.warmup
        result = {}

        def run():
            result.update(
                spread_clients(
                    server.url,
                    viewers,
                    idle.pids[:pids],
                    args.procs,
                    at=at,
                    spread=connect,
                    window=None,
                    go=go,
                    seconds=args.seconds,
                )
            )

        runner = threading.Thread(target=run)
        runner.start()
        time.sleep(max(0.0, go - time.time()))
        c0, w0 = cpu(sp), time.monotonic()
        time.sleep(args.seconds)
        c1, w1 = cpu(sp), time.monotonic()
        rss = sp.memory_info().rss
        runner.join()
    expected = pids * args.seconds / INTERVAL
    share = [c / expected for c in result["counts"]]
    ms = [x * 1000 for x in result["latencies"]]
    ok = sum(1 for c in result["connected"] if c is not None)
    return [
        f"{viewers} x {pids} PIDs",
        f"{ok}/{viewers}",
        f"{100 * (c1 - c0) / (w1 - w0):.1f}",
        f"{100 * min(share):.1f} / {100 * sum(share) / len(share):.1f}",
        f"{percentile(ms, 50):.1f}",
        f"{percentile(ms, 95):.1f}",
        f"{percentile(ms, 99):.1f}",
        f"{rss / MiB:.0f}",
    ]


def storm(url: str, n: int, procs: int) -> tuple[int, float, list[str]]:
    at = time.time() + 3
    r = spread_clients(url, n, [], procs, at=at, spread=1.0, window=None, go=at, seconds=10)
    times = [c for c in r["connected"] if c is not None]
    return len(times), max(times) if times else float("nan"), r["errors"]


def case_storm(idle: IdleProcesses, args) -> list:
    rows = []
    with Server(interval=INTERVAL) as server:
        progress(f"storm: {args.storm} viewers within 1 s, fresh server")
        ok, slowest, errors = storm(server.url, args.storm, args.procs)
        rows.append(["fresh", f"{ok}/{args.storm}", f"{slowest:.2f}", _errors(errors)])
    with Server(interval=INTERVAL) as server:
        progress(f"storm: 50 viewers for {args.served:.0f} s first")
        at = time.time() + 3
        spread_clients(
            server.url,
            50,
            idle.pids[:5],
            args.procs,
            at=at,
            spread=2,
            window=None,
            go=at + 3,
            seconds=args.served,
        )
        progress(f"storm: {args.storm} viewers within 1 s, after the 50-viewer run")
        ok, slowest, errors = storm(server.url, args.storm, args.procs)
        threads = psutil.Process(server.pid).num_threads()
        rows.append(
            [
                f"after 50 viewers for {args.served:.0f} s (server threads after: {threads})",
                f"{ok}/{args.storm}",
                f"{slowest:.2f}",
                _errors(errors),
            ]
        )
    return rows


def _errors(errors: list[str]) -> str:
    if not errors:
        return "none"
    kinds: dict[str, int] = {}
    for e in errors:
        kinds[e[:60]] = kinds.get(e[:60], 0) + 1
    return "; ".join(f"{k} (x{v})" for k, v in kinds.items())


def case_late(idle: IdleProcesses, args) -> list:
    """Joiners with 30 minutes of history, 10 watchers meanwhile."""
    pids = idle.pids[:5]
    argv = [sys.executable, str(HERE / "_prefilled_server.py"), "--seconds", "1800"]
    argv += ["--window", str(args.window), *map(str, pids)]
    argv += ["--binary-check"] if args.binary_check else []
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = wait_for(server.stdout.readline, 60, "prefilled server")
        port = int(re.search(r":(\d+)/", line).group(1))
        url = f"http://127.0.0.1:{port}"
        sp = psutil.Process(server.pid)
        progress(f"late: 10 watchers, then {args.storm} joiners of 30-minute-old history")
        at = time.time() + 3
        go = at + 4
        seconds = 20.0
        watchers = {}

        def run_watchers():
            watchers.update(
                spread_clients(
                    url, 10, pids, 1, at=at, spread=1, window=None, go=go, seconds=seconds
                )
            )

        runner = threading.Thread(target=run_watchers)
        runner.start()
        c0 = cpu(sp)
        joiners = spread_clients(
            url,
            args.storm,
            pids,
            args.procs,
            at=go + 2,
            spread=1.0,
            window=args.window,
            go=go + 2,
            seconds=10,
        )
        c1 = cpu(sp)
        runner.join()
    finally:
        server.terminate()
        server.wait(15)
    drawn = [a for a in joiners["acked"] if a is not None]
    ms = [x * 1000 for x in watchers["latencies"]]
    expected = len(pids) * seconds / INTERVAL
    return [
        f"{len(drawn)}/{args.storm}",
        f"{max(drawn):.2f}" if drawn else "-",
        f"{percentile([x for x in drawn], 50):.2f}" if drawn else "-",
        f"{c1 - c0:.1f}",
        f"{percentile(ms, 95):.1f}",
        f"{100 * min(watchers['counts']) / expected:.0f}",
        _errors(joiners["errors"]),
    ]


def case_stalled(idle: IdleProcesses, args) -> list:
    pids = idle.pids[:5]
    with Server(interval=INTERVAL) as server:
        sp = psutil.Process(server.pid)
        progress(f"stalled: 10 viewers and one stalled viewer, {args.stall:.0f} s")
        stalled = socket.create_connection(("127.0.0.1", server.port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        # Speak just enough to watch (client frames must be masked), then never read again.
        # Each step waits for the server's answer: frames sent along with the upgrade request
        # are lost (the HTTP server has read them into its own buffer).
        _read_until(stalled, b'"sid"')  # the 101 answer and Engine.IO's open packet
        stalled.sendall(_masked(b"40"))
        _read_until(stalled, b"40{")  # Socket.IO connected
        for i, p in enumerate(pids):
            stalled.sendall(_masked(f'42{i}["watch",{{"pid":{p}}}]'.encode()))
            _read_until(stalled, f"43{i}[".encode())  # its ack (with its backfill)
        at = time.time() + 3
        go = at + 3
        r0 = sp.memory_info().rss
        result = {}
        runner = threading.Thread(
            target=lambda: result.update(
                spread_clients(
                    server.url,
                    10,
                    pids,
                    2,
                    at=at,
                    spread=1,
                    window=None,
                    go=go,
                    seconds=args.stall,
                )  # fmt: skip
            )
        )
        runner.start()
        peak = r0
        while runner.is_alive():
            peak = max(peak, sp.memory_info().rss)
            runner.join(1)
        dropped = re.search(r"dropping viewer \S+: .*", server.output())
        gone = re.findall(r"(?:disconnect|Client is gone)[^\n]*", server.output())
        stalled.close()
    expected = len(pids) * args.stall / INTERVAL
    ms = [x * 1000 for x in result["latencies"]]
    return [
        f"{(peak - r0) / MiB:.1f}",
        dropped.group(0) if dropped else ("; ".join(gone[:2]) or "not dropped"),
        f"{100 * min(result['counts']) / expected:.1f}",
        f"{percentile(ms, 95):.1f}",
    ]


def _read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> None:
    """Read ``sock`` until ``marker`` has arrived (frames are not parsed: a marker is enough)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"connection closed before {marker!r}")
        seen = seen[-len(marker) :] + chunk
    sock.settimeout(None)


def _masked(payload: bytes) -> bytes:
    """One masked WebSocket text frame (a client must mask)."""
    mask = b"\x01\x02\x03\x04"
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", default="room,big,storm,late,stalled")
    p.add_argument("--quick", action="store_true", help="short windows (about a minute in all)")
    p.add_argument("--seconds", type=float, default=20, help="measured window per room (20)")
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--viewers", type=int, default=100)
    p.add_argument("--big", type=int, default=300)
    p.add_argument("--pids", type=int, default=5)
    p.add_argument("--storm", type=int, default=100)
    p.add_argument("--served", type=float, default=20, help="the 50-viewer run before a storm")
    p.add_argument("--stall", type=float, default=60)
    p.add_argument("--window", type=float, default=300, help="late joiners' window (300 s)")
    p.add_argument("--procs", type=int, default=4, help="client processes (4)")
    p.add_argument("--binary-check", action="store_true", help="late: today's packet encoding")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.served, args.stall = 8, 8, 15
    cases = args.case.split(",")
    header("memdash room mode: many viewers")
    with IdleProcesses(args.pids) as idle:
        if "room" in cases or "big" in cases:
            rows = []
            if "room" in cases:
                rows.append(case_room(idle, args.viewers, args.pids, args))
            if "big" in cases:
                rows.append(case_room(idle, args.big, args.pids, args))
            print(f"### Room at 10 Hz ({args.seconds:.0f} s window, {args.procs} client procs)\n")
            cols = ["viewers", "connected", "server CPU %", "samples received % (min / mean)"]
            cols += ["p50 ms", "p95 ms", "p99 ms", "server RSS MiB"]
            print_table(cols, rows)
        if "storm" in cases:
            print("### Connection storm (all within 1 s; counted when connected within 10 s)\n")
            print_table(
                ["server", "connected", "slowest s", "client errors"], case_storm(idle, args)
            )
        if "late" in cases:
            print(f"### Late joiners: {args.storm} viewers, 5 PIDs x 30 min of history\n")
            cols = ["drawing", "slowest s", "median s", "server CPU s", "watchers p95 ms"]
            cols += ["watchers min samples %", "errors"]
            print_table(cols, [case_late(idle, args)])
        if "stalled" in cases:
            print(f"### A stalled viewer among 10 ({args.stall:.0f} s)\n")
            cols = ["server RSS growth MiB", "dropped (server log)", "others min samples %"]
            cols += ["others p95 ms"]
            print_table(cols, [case_stalled(idle, args)])
    note(
        "Noisy: 2 cores shared by the server, the client processes and other work on the "
        "machine; latency is receive time - sample t on one clock (loopback)."
    )


if __name__ == "__main__":
    main()
