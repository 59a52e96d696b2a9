"""History tiers: what a watched process's history costs over a long session.

Feeds one :class:`dashboard.history.History` (30 minutes at full rate, the server's default)
with synthetic samples at 10 Hz and explicit times (no sleeping): statm every sample, detail
(USS/PSS/swap/anon) once a second, and with ``--heap`` the language heap once a second too
(a leak-lab worker: 12 figures). Prints, after each ``--hours`` mark: the memory the columns
have allocated (full rate and tiers; the target is at most 4 MiB after 24 hours), the append
cost per sample (CPU time, folding into the tiers included), and the time of the "all"
window's backfill on a 2000-point chart (first, then cached as a second viewer gets it).

    .venv/bin/python benchmarks/bench_history.py [--hours 1 6 24] [--heap]
"""

from __future__ import annotations

import argparse
import time

from _common import MiB

from dashboard.history import History

T0 = 1_764_000_000.0
GIB = 2**30


def feed(history: History, first: int, end: int, heap: bool) -> None:
    """Samples ``first:end`` of a slowly growing process with a saw-tooth and a spike an hour."""
    append = history.append
    for i in range(first, end):
        rss = 100 * MiB + 4096 * (i % 10) + 64 * i + (GIB if i % 36_000 == 18_000 else 0)
        sample = {"t": T0 + i / 10, "rss": rss, "vms": rss + GIB, "shared": 4096, "text": 8192}
        sample["data"] = rss - MiB
        if i % 10 == 0:
            sample.update(uss=rss - 20 * MiB, pss=rss - 10 * MiB, swap=0, anon=rss - 30 * MiB)
            if heap:
                sample.update(heap_used=rss // 4, heap_total=rss // 3, external=4096)
        append(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[1, 6, 24])
    parser.add_argument("--heap", action="store_true", help="language heap figures too")
    args = parser.parse_args()
    history = History(18000)
    rows = []
    done = 0
    for hours in sorted(args.hours):
        end = int(hours * 36_000)
        cpu = time.process_time()
        feed(history, done, end, args.heap)
        per_sample = (time.process_time() - cpu) / max(1, end - done)
        done = end
        timings = []
        for _ in range(2):  # the first viewer computes, the second gets the cached buckets
            start = time.perf_counter()
            samples, bucket = history.backfill(window=None, max_points=2000)
            timings.append(time.perf_counter() - start)
        rows.append(
            (
                hours,
                history.nbytes() / MiB,
                per_sample * 1e6,
                *(t * 1e3 for t in timings),
                len(samples),
                bucket,
                len(history),
                len(history.seconds),
                len(history.minutes),
            )
        )
    figures = "12 figures (statm, detail, language heap)" if args.heap else "9 figures"
    print(f"### History of one process at 10 Hz, {figures}\n")
    print(
        "| hours | memory MiB | append µs/sample | backfill all ms | cached ms | samples | "
        "bucket s | full rate | per-second | per-minute |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            "| {:g} | {:.2f} | {:.2f} | {:.1f} | {:.1f} | {} | {:g} | {} | {} | {} |".format(*row)
        )


if __name__ == "__main__":
    main()
