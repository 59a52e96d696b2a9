"""Module accumulator: a module-level list every call appends to, vs the same with drain().

The seed's Node example is `var queue = []; exports.push = () => queue.push(Math.random())`:
a module lives as long as the process, so anything it holds does too.
Run: python -m dashboard.scenarios.module_accumulator --variant leaky|fixed
"""

import os

from dashboard.scenarios._worker import Work, run

# region leaky
# A "metrics" module: callers record an event, someone meant to ship them later.
# The list is a module global, so it lives as long as the process, and
# nothing ever empties it: every call makes it longer.
_events = []


def record_leaky(event):
    _events.append(event)


# endregion


# region fixed
# The same module, but it hands its contents over: the caller drains the
# buffer (ships the batch somewhere) and the module forgets it.
_pending = []


def record_fixed(event):
    _pending.append(event)


def drain():
    """Give the caller everything recorded so far and start empty again."""
    global _pending
    batch, _pending = _pending, []
    return batch


def ship(batch):
    return len(batch)  # stands in for writing to a log, a socket, a metrics server


def handle_fixed(i, item_kb, flush_every):
    record_fixed(os.urandom(item_kb * 1024))
    if (i + 1) % flush_every == 0:
        ship(drain())  # the caller consumes the buffer regularly


# endregion


def make(args):
    if args.variant == "leaky":
        return Work(lambda i: record_leaky(os.urandom(args.item_kb * 1024)), args.rate)
    return Work(lambda i: handle_fixed(i, args.item_kb, args.flush_every), args.rate)


if __name__ == "__main__":
    run("module_accumulator", make, doc=__doc__)
