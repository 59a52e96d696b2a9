"""Shared cache: N worker processes each keep their own copy of the same cache, vs Redis.

A cache inside a process cannot be shared: with N workers the same data sits in memory
N times. The fix is to keep the cache out of the processes, in Redis (or Memcached).
Run: python -m dashboard.scenarios.shared_cache --variant leaky|fixed [--workers 3 --redis-port P]
The RSS that matters is the sum over the process tree (this process + its workers).
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from dashboard.scenarios._worker import Work, emit, run

# region leaky
# Every worker caches what it looked up in its own dict. The keys are the same in
# every worker, so the tree holds N copies, and with no size limit each copy grows.
local_cache = {}


def lookup_leaky(key, item_kb):
    if key not in local_cache:
        local_cache[key] = os.urandom(item_kb * 1024)  # "load it from the database"
    return local_cache[key]


# endregion


# region fixed
# Workers keep nothing: one copy lives in Redis, shared by all of them, and each
# key expires after `ttl` seconds, so Redis stays bounded too.
def lookup_fixed(redis, key, item_kb, ttl):
    value = redis.call("GET", key)
    if value is None:
        value = os.urandom(item_kb * 1024)
        redis.call("SET", key, value, "EX", ttl)
    return value


# endregion


class Redis:
    """The smallest Redis client: RESP over a socket, one command at a time."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.file = self.sock.makefile("rb")

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(parts))
        return self.reply()

    def reply(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError(f"bad reply from redis: {line!r}")


def die_with_parent():
    """Ask the kernel to SIGKILL this process when its parent dies (Linux prctl)."""
    PR_SET_PDEATHSIG = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def make_child(args):
    die_with_parent()  # the runner's loop also exits once getppid() changes
    key = lambda i: f"page:{i}"  # noqa: E731 - the same keys in every worker
    if args.variant == "leaky":
        return Work(lambda i: lookup_leaky(key(i), args.item_kb), args.rate)
    redis = Redis(args.redis_port)
    return Work(lambda i: lookup_fixed(redis, key(i), args.item_kb, args.ttl), args.rate)


def make_parent(args):
    """Start the workers; collect the stats they print (RSS, heap) for the cap and heap line,
    pass memdash's commands for one of them on (its stdin) and its replies back (our stdout)."""
    stats = {}
    argv = [sys.executable, "-m", "dashboard.scenarios.shared_cache", "--child"]
    argv += [a for a in sys.argv[1:] if a != "--child"] + ["--parent-pid", str(os.getpid())]
    children = []

    def check(i):  # the parent's own "work": notice a worker that died (e.g. no Redis)
        for child in children:
            if child.poll() is not None:
                raise RuntimeError(f"worker {child.pid} exited with code {child.returncode}")

    def relay(pid, command):
        child = next((c for c in children if c.pid == pid), None)
        if child is None:
            return False
        try:
            child.stdin.write(json.dumps(command).encode() + b"\n")
            child.stdin.flush()
        except OSError:
            return False
        return True

    # stdin: a pipe, for our commands and so that it sees EOF when we die
    for n in range(args.workers):
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        threading.Thread(target=follow, args=(child, n, stats), daemon=True).start()
        children.append(child)
    while len(stats) < args.workers:  # start the clock once every worker is up
        time.sleep(0.05)
        check(0)

    return Work(check, 4, children=lambda: list(stats.values()), relay=relay)


def follow(child, n, stats):
    """A worker's stdout: its stats, and replies to commands, which go on to memdash."""
    for line in child.stdout:
        message = json.loads(line)
        if message.get("type") == "child":
            stats[n] = message
        else:
            emit(message)
    stats.pop(n, None)


def make(args):
    return make_child(args) if args.child else make_parent(args)


if __name__ == "__main__":
    run("shared_cache", make, doc=__doc__)
