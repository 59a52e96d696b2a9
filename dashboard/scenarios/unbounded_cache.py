"""Unbounded cache: a dict keyed by request id that only grows, vs an LRU with a size and a TTL.

Run: python -m dashboard.scenarios.unbounded_cache --variant leaky|fixed [--rate 200 --item-kb 8]
"""

import os
import time
from collections import OrderedDict

from dashboard.scenarios._worker import Work, run

# region leaky
# "Cache the rendered response so the next identical request is free."
# But every request has a new id, so nearly every entry is a miss that is
# stored forever: the dict grows by one response per request until the process dies.
cache = {}


def handle_leaky(request_id, item_kb):
    if request_id not in cache:
        cache[request_id] = os.urandom(item_kb * 1024)  # the "rendered response"
    return cache[request_id]


# endregion


# region fixed
class LRUCache:
    """At most `max_items` entries, each kept at most `ttl` seconds."""

    def __init__(self, max_items, ttl):
        self.max_items, self.ttl = max_items, ttl
        self.data = OrderedDict()  # key -> (expires_at, value); oldest use first

    def get(self, key):
        hit = self.data.get(key)
        if hit is None or hit[0] < time.monotonic():
            self.data.pop(key, None)  # expired entries go, even if never evicted
            return None
        self.data.move_to_end(key)  # recently used: evicted last
        return hit[1]

    def put(self, key, value):
        self.data[key] = (time.monotonic() + self.ttl, value)
        self.data.move_to_end(key)
        while len(self.data) > self.max_items:
            self.data.popitem(last=False)  # evict the least recently used


def handle_fixed(lru, request_id, item_kb):
    value = lru.get(request_id)
    if value is None:
        value = os.urandom(item_kb * 1024)
        lru.put(request_id, value)
    return value


# endregion


def make(args):
    if args.variant == "leaky":
        return Work(lambda i: handle_leaky(f"req-{i}", args.item_kb), args.rate)
    lru = LRUCache(args.max_items, args.ttl)
    return Work(lambda i: handle_fixed(lru, f"req-{i}", args.item_kb), args.rate)


if __name__ == "__main__":
    run("unbounded_cache", make, doc=__doc__)
