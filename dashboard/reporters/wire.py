"""What the report receiver (receiver.py) reads: a report line (:func:`parse`, the figures in
``FIELDS``) and one connection's state (:class:`Connection`: its line buffer, which drops
over-long lines, its token buckets for reports and bytes, and its pending commands).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Optional

MAX_LINE = 4096
MAX_REPLY = 256 * 1024  # a reply line (a leak report), accepted only while one is awaited
BYTES_PER_SECOND = 64 * 1024
MAX_CONNECTIONS = 1024
RUNTIMES = ("node", "python")
# Figures a reporter may send, in the sample's wire names (all ints, bytes unless noted).
FIELDS = frozenset(
    {
        # both runtimes (Python: tracemalloc current/peak, only with MEMDASH_TRACEMALLOC=1)
        "heap_used",
        "heap_total",
        # Node: process.memoryUsage() and v8.getHeapStatistics()
        "external",
        "array_buffers",
        "reported_rss",
        "heap_limit",
        "v8_heap_used",
        "v8_heap_total",
        "malloced",
        # Python: counts, not bytes (py_blocks = sys.getallocatedblocks())
        "py_blocks",
        "gc_gen0",
        "gc_gen1",
        "gc_gen2",
        "gc_collections",
        "gc_collected",
        "gc_uncollectable",
        "traced_current",
        "traced_peak",
    }
)


def parse(line: bytes) -> Optional[tuple[Optional[str], dict]]:
    """(runtime, fields) from one report line, or None when there is nothing usable in it."""
    try:
        message = json.loads(line)
    except ValueError:  # includes bad UTF-8
        return None
    if not isinstance(message, dict):
        return None
    fields = {
        k: v
        for k, v in message.items()
        if k in FIELDS and type(v) is int and 0 <= v < 2**63  # type(): bool is not a figure
    }
    runtime = message.get("runtime")
    if not fields:
        return None
    return (runtime if runtime in RUNTIMES else None), fields


class Connection:
    """One reporter's connection, as the receiver's thread reads it."""

    def __init__(self, sock: socket.socket, pid: int, rate: float) -> None:
        self.sock = sock
        self.pid = pid
        self.buffer = b""
        self.skipping = False  # inside an over-long line: drop until its newline
        self.overlong = 0  # over-long lines dropped, not yet counted as garbage
        self.rate = rate
        self.tokens = rate  # token bucket: reports passed on
        self.budget = float(BYTES_PER_SECOND)  # token bucket: bytes read
        self.refilled = time.monotonic()
        self.paused_until = 0.0
        self.pending: dict[int, list] = {}  # request id -> [threading.Event, reply or None]
        self.write_lock = threading.Lock()

    def refill(self, now: float) -> None:
        elapsed, self.refilled = now - self.refilled, now
        self.tokens = min(self.rate, self.tokens + elapsed * self.rate)
        self.budget = min(float(BYTES_PER_SECOND), self.budget + elapsed * BYTES_PER_SECOND)

    @property
    def max_line(self) -> int:
        return MAX_REPLY if self.pending else MAX_LINE

    def lines(self, data: bytes) -> list[bytes]:
        """Complete lines in ``data`` after what was buffered; over-long lines dropped."""
        out = []
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 1 :]
            if self.skipping:
                self.skipping = False
            elif len(line) <= self.max_line:
                out.append(line)
            else:
                self.overlong += 1
        if len(self.buffer) > self.max_line:
            if not self.skipping:
                self.overlong += 1
            self.buffer, self.skipping = b"", True
        return out
