"""The sampling loop's own cost: CPU per tick, back to back (hot caches) and with the sampling
interval's sleep between ticks (cold, as in the server).

A :class:`dashboard.sampler.Sampler` (no web layer, no sinks, no emit) holds ``--pids`` idle
Python children for one socket-like holder that draws RSS (detail every 10 s, as for a page
on its default metric). After a warm-up, ``--ticks`` ticks are timed with ``time.thread_time``
(this thread's user + sys), first one after another, then each after ``--interval`` of sleep.
The difference is what waking up costs the interpreter 10 times a second: it is paid whatever
the number of processes, and it is why the server's CPU (bench_cpu.py) is several times what
a profile of the hot loop suggests.

    .venv/bin/python benchmarks/bench_tick.py [--ticks 100] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import time

from _common import IdleProcesses, header, note, print_table

from dashboard.sampler import Sampler


def per_tick(sampler: Sampler, ticks: int, sleep: float) -> float:
    """Microseconds of this thread's CPU per tick."""
    spent = 0.0
    for _ in range(ticks):
        if sleep:
            time.sleep(sleep)
        start = time.thread_time()
        sampler.tick()
        spent += time.thread_time() - start
    return spent / ticks * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ticks", type=int, default=100, help="timed ticks per row (100)")
    p.add_argument("--interval", type=float, default=0.1, help="sleep between cold ticks (0.1 s)")
    args = p.parse_args()
    header("sampling loop CPU per tick, hot and cold")
    rows = []
    for count in (1, 20):
        with IdleProcesses(count) as idle:
            sampler = Sampler(interval=args.interval)
            for pid in idle.pids:
                sampler.watch(pid, False, "viewer")
            sampler.draws_detail("viewer", False)
            per_tick(sampler, 20, 0)  # warm-up: first reads, history columns
            hot = per_tick(sampler, args.ticks, 0)
            cold = per_tick(sampler, args.ticks, args.interval)
            sampler.stop()
        at_rate = cold / args.interval / 1e4  # µs per tick -> % of one core at this rate
        rows.append([count, f"{hot:.0f}", f"{cold:.0f}", f"{cold / hot:.1f}x", f"{at_rate:.2f}"])
    print_table(
        ["processes", "µs/tick hot", "µs/tick cold", "cold / hot", "% of a core (cold)"], rows
    )
    note("CPU is this thread's (time.thread_time); the machine's other load changes 'cold' most")


if __name__ == "__main__":
    main()
