"""Closure retention: callbacks that capture a large object and stay registered.

The seed's example: a timer callback that closes over `largeArr` keeps all of it alive.
Here each request registers a callback on a long-lived list of listeners.
Run: python -m dashboard.scenarios.closure_retention --variant leaky|fixed
"""

import os

from dashboard.scenarios._worker import Work, run

# A long-lived "emitter": callbacks to run at shutdown. It lives as long as the process.
on_shutdown = []


# region leaky
def handle_leaky(request_id, item_kb):
    report = os.urandom(item_kb * 1024)  # a big object built for this request only

    def log_at_shutdown():
        # This closure uses `report`, so it keeps the whole object alive ...
        print(f"request {request_id}: {len(report)} bytes")

    on_shutdown.append(log_at_shutdown)  # ... and the list keeps the closure alive. Forever.
    return len(report)


# endregion


# region fixed
def handle_fixed(request_id, item_kb):
    report = os.urandom(item_kb * 1024)
    size = len(report)  # take only what the callback needs ...

    def log_at_shutdown():
        print(f"request {request_id}: {size} bytes")  # ... so it holds an int, not the report

    on_shutdown.append(log_at_shutdown)
    try:
        return size
    finally:
        on_shutdown.remove(log_at_shutdown)  # and unregister it when the request is over


# endregion


def make(args):
    handle = handle_leaky if args.variant == "leaky" else handle_fixed
    return Work(lambda i: handle(i, args.item_kb), args.rate)


if __name__ == "__main__":
    run("closure_retention", make, doc=__doc__)
