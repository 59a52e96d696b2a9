"""Heap limit: what happens when a leak reaches the memory limit, vs bounded retention.

Node stops at its V8 heap limit (--max-old-space-size) with "JavaScript heap out of memory".
Python has no heap limit of its own, so this script sets one: RLIMIT_AS, the address space
the process may map, to what it has mapped at start plus --limit-mb. Past it, allocations
fail and Python raises MemoryError; nobody catches it, so the process dies with a traceback.
Run: python -m dashboard.scenarios.heap_limit --variant leaky|fixed [--limit-mb 96]
"""

import os
import resource
from collections import deque

from dashboard.scenarios._worker import Work, run

# region leaky
# Every result is kept "for later". Nothing bounds the list, so it grows
# until an allocation fails: MemoryError, uncaught, the process dies.
results = []


def handle_leaky(item_kb):
    results.append(os.urandom(item_kb * 1024))


# endregion


# region fixed
# The same work, but only the last max_items results are kept: memory stays
# flat far below the limit and the process lives on.
recent = deque()


def handle_fixed(item_kb, max_items):
    recent.append(os.urandom(item_kb * 1024))
    if len(recent) > max_items:
        recent.popleft()


# endregion


def set_limit(limit_mb):
    with open("/proc/self/status") as f:
        vm_size = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))
    limit = vm_size + limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def make(args):
    set_limit(args.limit_mb)  # after the runner started its threads: their stacks are mapped
    if args.variant == "leaky":
        return Work(lambda i: handle_leaky(args.item_kb), args.rate)
    return Work(lambda i: handle_fixed(args.item_kb, args.max_items), args.rate)


if __name__ == "__main__":
    run("heap_limit", make, doc=__doc__)
