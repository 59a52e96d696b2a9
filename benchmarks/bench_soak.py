"""Soak: server RSS while viewers keep coming and going.

A loop keeps about ``--viewers`` Socket.IO viewers connected: each connects, watches
``--watch`` random PIDs out of a pool of ``--pool`` idle children (with no ``since``, as a
page's first load does, so it gets the whole history in the ack), stays a random 2-8 s and
leaves. The server's RSS, thread count and open fds are read from /proc every
``--sample-every`` seconds. Reported: RSS after warm-up, at the end, and the growth between.

History: ``create_app`` preallocates each target's ring (``RingBuffer``: 14 float columns x
HISTORY_SECONDS / INTERVAL rows, ~2 MB per target at the default 1800 s), so the ring itself
does not grow RSS as it fills. What does grow with the history's fill level is every watch ack
(``history.since(None)`` returns every stored sample as a dict, then JSON), so with the default
30 min the acks keep getting bigger for 30 min and the allocator's high-water mark with them.
So this benchmark starts ``memdash --history 60`` (its ``--history``, default 60 s): the ring
is full well before the warm-up point and growth after warm-up means memory that is not
given back.

Target (issue): growth under 5 MB after warm-up.

    .venv/bin/python benchmarks/bench_soak.py [--seconds 600] [--quick]
"""

from __future__ import annotations

import argparse
import random
import threading
import time

from _common import (
    IdleProcesses,
    MiB,
    header,
    note,
    print_table,
    progress,
    rss,
    slope,
)

from dashboard.testing import Server, Viewer


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=600, help="soak length (default 600)")
    p.add_argument(
        "--quick", action="store_true", help="90 s soak, 30 s warm-up, 10 s history: a smoke test"
    )
    p.add_argument("--warmup", type=float, help="warm-up point (default 120 s; quick: 30 s)")
    p.add_argument("--history", type=float, help="HISTORY_SECONDS (default 60; quick: 10)")
    p.add_argument("--interval", type=float, default=0.1, help="sampling interval (default 0.1)")
    p.add_argument("--viewers", type=int, default=5, help="viewers connected at a time (5)")
    p.add_argument("--pool", type=int, default=8, help="idle target processes (8)")
    p.add_argument("--watch", type=int, default=3, help="PIDs each viewer watches (3)")
    p.add_argument("--sample-every", type=float, default=10, help="RSS sampling period (10 s)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.quick:
        args.seconds = 90
    if args.history is None:
        args.history = 10 if args.quick else 60
    if args.warmup is None:
        args.warmup = 30 if args.quick else min(120, args.seconds / 3)
    return args


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def fd_count(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


class Churn:
    """Keeps ``n`` viewer sessions going until stopped; counts what happened."""

    def __init__(self, url: str, pids: list[int], n: int, watch: int, seed: int):
        self.url, self.pids, self.n, self.watch = url, pids, n, watch
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.slots = threading.Semaphore(n)
        self.lock = threading.Lock()
        self.sessions = 0
        self.samples = 0
        self.failures: list[str] = []
        self.threads: list[threading.Thread] = []

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.slots.acquire(timeout=0.2):
                continue
            with self.lock:
                pids = self.rng.sample(self.pids, self.watch)
                stay = self.rng.uniform(2, 8)
            t = threading.Thread(target=self._session, args=(pids, stay), daemon=True)
            t.start()
            self.threads = [x for x in self.threads if x.is_alive()] + [t]

    def _session(self, pids: list[int], stay: float) -> None:
        viewer = None
        try:
            viewer = Viewer(self.url, keep=False)
            for pid in pids:
                viewer.watch(pid)
            if viewer.errors:
                raise RuntimeError(f"watch refused: {viewer.errors[0]}")
            self.stop.wait(stay)
            viewer.close(wait=True)
            with self.lock:
                self.sessions += 1
                self.samples += viewer.counts()[1]
        except Exception as e:  # a failed session is reported, not fatal
            with self.lock:
                self.failures.append(repr(e))
            if viewer is not None:
                viewer.close()
        finally:
            self.slots.release()

    def join(self) -> None:
        for t in self.threads:
            t.join(15)


def main() -> None:
    args = parse_args()
    header("memdash soak: server RSS under viewer churn")
    with IdleProcesses(args.pool) as idle:
        with Server("--history", str(args.history), interval=args.interval) as server:
            progress(f"server pid {server.pid}, soak {args.seconds:.0f} s")
            churn = Churn(server.url, idle.pids, args.viewers, args.watch, args.seed)
            runner = threading.Thread(target=churn.run, daemon=True)
            start = time.monotonic()
            points = []  # (elapsed, rss, threads, fds, sessions)

            def sample():
                st = proc_status(server.pid)
                with churn.lock:
                    sessions = churn.sessions
                elapsed = time.monotonic() - start
                points.append(
                    (elapsed, rss(server.pid), st["Threads"], fd_count(server.pid), sessions)
                )

            sample()
            runner.start()
            n = 1
            while True:
                due = start + n * args.sample_every
                if due > start + args.seconds + 1e-6:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                sample()
                n += 1
                if n % 6 == 0:
                    progress(f"{points[-1][0]:.0f} s: RSS {points[-1][1] / MiB:.1f} MiB")
            churn.stop.set()
            runner.join(5)
            churn.join()
            hwm = proc_status(server.pid)["VmHWM"] * 1024
            # Give closing connections a moment to finish (up to 10 s, until threads are back
            # to the count before the first viewer).
            quiet = time.monotonic() + 10
            while time.monotonic() < quiet and proc_status(server.pid)["Threads"] > points[0][2]:
                time.sleep(0.5)
            after = (rss(server.pid), proc_status(server.pid)["Threads"], fd_count(server.pid))

    print(
        f"- load: {args.viewers} viewers at a time, each watching {args.watch} of {args.pool} "
        f"idle PIDs for 2-8 s; interval {args.interval} s; --history {args.history:g} s; "
        f"soak {args.seconds:.0f} s, warm-up {args.warmup:.0f} s\n"
    )
    step = max(1, round(30 / args.sample_every))  # print every ~30 s, plus warm-up and end
    warm_idx = next(
        (i for i, p in enumerate(points) if p[0] >= args.warmup - 1e-6), len(points) - 1
    )
    rows = []
    for i, (t, r, th, fds, sessions) in enumerate(points):
        if i % step == 0 or i == warm_idx or i == len(points) - 1:
            mark = " (warm-up)" if i == warm_idx else ""
            rows.append([f"{t:.0f}{mark}", f"{r / MiB:.1f}", th, fds, sessions])
    print_table(["t (s)", "server RSS (MiB)", "threads", "open fds", "sessions done"], rows)

    warm_rss = points[warm_idx][1]
    end_rss = points[-1][1]
    after_warm = [(t, r) for t, r, *_ in points[warm_idx:]]
    per_hour = slope(after_warm) * 3600 / MiB
    late = [r for _, r, *_ in points[warm_idx:]]
    summary = [
        ["RSS at warm-up", f"{warm_rss / MiB:.1f} MiB (t = {points[warm_idx][0]:.0f} s)"],
        ["RSS at end", f"{end_rss / MiB:.1f} MiB (t = {points[-1][0]:.0f} s)"],
        ["growth after warm-up (end - warm-up)", f"{(end_rss - warm_rss) / MiB:+.2f} MiB"],
        ["max - min after warm-up", f"{(max(late) - min(late)) / MiB:.2f} MiB"],
        ["least-squares slope after warm-up", f"{per_hour:+.1f} MiB/hour"],
        ["peak RSS (VmHWM)", f"{hwm / MiB:.1f} MiB"],
        ["at start (no viewer yet): threads, fds", f"{points[0][2]}, {points[0][3]}"],
        ["sessions completed / failed", f"{churn.sessions} / {len(churn.failures)}"],
        ["samples received by all viewers", churn.samples],
        [
            "after the last viewer left (<= 10 s settle): RSS, threads, fds",
            f"{after[0] / MiB:.1f} MiB, {after[1]}, {after[2]}",
        ],
        ["target", "growth < 5 MB after warm-up"],
    ]
    print_table(["figure", "value"], summary)
    if churn.failures:
        note(f"first failures: {churn.failures[:3]}")


if __name__ == "__main__":
    main()
