"""The common part of every Python scenario, so the scenario files stay short.

A scenario file defines ``make(args) -> Work`` and calls ``run("<id>", make, doc=__doc__)``;
its options are the catalogue's parameters (``dashboard/scenarios/catalogue.json``).
This module parses the common options, calls ``Work.step(i)`` for item i = 0, 1, 2, ... at
``Work.rate`` items per second, checks its own RSS against ``--max-rss-mb`` (every tick, 20 a
second), prints a ``heap`` line once a second and answers JSON-line commands on stdin.
The protocol is documented in ``dashboard/scenarios/__init__.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from typing import Callable, Optional

from dashboard.scenarios import _leaks as leaks

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = 0.05  # seconds between ticks: the RSS cap is checked at least this often
EXIT_CAPPED = 3
_out_lock = threading.Lock()
_reserve = None


@dataclass
class Work:
    """What a scenario gives the runner."""

    step: Callable[[int], object]  # handle item number i; called `rate` times a second
    rate: float  # items per second
    # bytes the scenario holds outside the Python heap (offheap: mmapped chunks)
    external: Optional[Callable[[], int]] = None
    # shared_cache: latest stats of the child processes, [{"rss", "heap_used", "heap_total"}]
    children: Optional[Callable[[], list]] = None
    # shared_cache: forward a command to the child process with this pid; False if none
    relay: Optional[Callable[[int, dict], bool]] = None


_work: Optional[Work] = None  # this process's work, once made (for relaying commands)


def emit(obj: dict) -> None:
    """Write one protocol line to stdout and flush it (one writer at a time)."""
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def rss_bytes(pid: str = "self") -> int:
    """Resident set size from /proc/<pid>/statm (second field, in pages)."""
    fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
    try:
        return int(os.read(fd, 200).split()[1]) * PAGE
    finally:
        os.close(fd)


def parser(scenario: str, doc: Optional[str]) -> argparse.ArgumentParser:
    """The command line of a scenario: its parameters come from the catalogue, so a run by
    hand and a run started by memdash have the same defaults and limits."""
    from dashboard.scenarios import SCENARIOS, VARIANTS

    p = argparse.ArgumentParser(prog=f"python -m dashboard.scenarios.{scenario}", description=doc)
    p.add_argument("--variant", choices=VARIANTS, required=True)
    for param in SCENARIOS[scenario].params:
        kind = int if param.type == "int" else float
        p.add_argument(
            "--" + param.name.replace("_", "-"),
            type=kind,
            default=kind(param.default),
            help=f"{param.help} ({param.min}-{param.max} {param.unit}".rstrip()
            + f"; default {param.default})",
        )
    p.add_argument("--no-heap", action="store_true", help="no tracemalloc, no heap lines")
    p.add_argument("--dry-run", action="store_true", help="print the params as JSON and exit")
    # shared_cache runs its workers as children of the same program
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)
    return p


def heap_stats(work: Optional[Work] = None) -> dict:
    current, peak = tracemalloc.get_traced_memory()
    out = {"heap_used": current, "heap_total": peak}
    if work is not None and work.external is not None:
        out["external"] = int(work.external())
    return out


def run(scenario: str, make: Callable, *, doc=None):
    from dashboard.scenarios import SCENARIOS

    args = parser(scenario, doc).parse_args()
    if args.dry_run:
        params = {p.name: getattr(args, p.name) for p in SCENARIOS[scenario].params}
        line = {"runtime": "python", "scenario": scenario, "variant": args.variant}
        emit({"type": "params", **line, "params": params})
        return
    global _reserve
    _reserve = bytearray(2**20)  # address space to give back so a MemoryError can be printed
    sys.excepthook = _die
    heap = not args.no_heap
    if heap:
        tracemalloc.start(leaks.NFRAMES)
    if args.child:
        if _stdin_is_pipe():  # the parent's pipe: its commands, and EOF when it dies
            threading.Thread(target=_read_commands, args=(heap,), daemon=True).start()
        return _run_child(args, make)

    emit(
        {
            "type": "hello",
            "runtime": "python",
            "scenario": scenario,
            "variant": args.variant,
            "pid": os.getpid(),
        }
    )
    if _stdin_is_pipe():  # run by hand from a terminal: no commands, no exit on EOF
        threading.Thread(target=_read_commands, args=(heap,), daemon=True).start()

    global _work
    work = _work = make(args)
    cap = args.max_rss_mb * 2**20
    start = time.monotonic()
    next_heap = start + 1.0
    done = 0

    def check_cap():
        rss = rss_bytes()
        if work.children is not None:
            rss += sum(c.get("rss", 0) for c in work.children())
        if rss > cap:
            reason = f"memory cap {args.max_rss_mb:g} MiB (rss {rss / 2**20:.0f} MiB)"
            emit({"type": "capped", "reason": reason})
            os._exit(EXIT_CAPPED)  # don't spend seconds freeing a huge heap

    while True:
        now = time.monotonic()
        if now - start >= args.duration:
            emit({"type": "done", "reason": "duration reached"})
            os._exit(0)
        # Items due by now; catch up at most half a second of work per tick.
        due = min(int((now - start) * work.rate), done + max(1, int(work.rate / 2)))
        last_check = now
        while done < due:
            work.step(done)
            done += 1
            if time.monotonic() - last_check > TICK:  # a slow step must not skip the cap
                check_cap()
                last_check = time.monotonic()
        check_cap()
        if heap and now >= next_heap:
            stats = heap_stats(work)
            for c in work.children() if work.children else ():
                stats["heap_used"] += c.get("heap_used", 0)
                stats["heap_total"] += c.get("heap_total", 0)
            emit({"type": "heap", "t": time.time(), **stats})
            next_heap += 1.0
        time.sleep(TICK)


def _die(kind, value, tb):
    """An uncaught exception: print the traceback as usual, then exit 1 at once. Skipping the
    interpreter's clean-up matters after a MemoryError, where the clean-up itself can fail;
    so does never raising from here (Python would then finalize, and may abort)."""
    global _reserve
    _reserve = None  # give back the reserve first: what follows needs a little memory
    try:
        try:
            out_of_memory = kind is MemoryError or _near_address_space_limit()
        except MemoryError:
            out_of_memory = True
        sys.__excepthook__(kind, value, tb)
        if out_of_memory and kind is not MemoryError:
            # Allocation failures deep in C code sometimes surface as a bare SystemError;
            # say what really happened, as the last line a reader (and memdash) sees.
            sys.stderr.write("MemoryError: out of address space, RLIMIT_AS reached\n")
        sys.stderr.flush()
    finally:
        os._exit(1)


def _near_address_space_limit() -> bool:
    """True when this process has (almost) used up its RLIMIT_AS."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return False
    try:
        with open("/proc/self/status") as f:
            vm_size = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))
    except (OSError, StopIteration):
        return False
    return vm_size > soft - 16 * 2**20


def _run_child(args, make):
    """A shared_cache worker: work until the parent goes; report stats to it 4 times a second."""
    work = make(args)
    start = time.monotonic()
    done = 0
    next_report = start
    parent = args.parent_pid
    while os.getppid() == parent:  # reparented: the parent died before our death signal was set
        now = time.monotonic()
        while done < int((now - start) * work.rate):
            work.step(done)
            done += 1
        if now >= next_report:
            stats = heap_stats() if tracemalloc.is_tracing() else {}
            emit({"type": "child", "rss": rss_bytes(), **stats})
            next_report += 0.25
        time.sleep(TICK)
    os._exit(0)


def _stdin_is_pipe() -> bool:
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _reply_error(message: str) -> None:
    emit({"type": "error", "message": message, "pid": os.getpid()})


def _read_commands(heap: bool) -> None:
    """Background thread: one JSON command per line. EOF means memdash (for a shared_cache
    worker: its parent) died: exit at once. A command whose "pid" is another process's is
    forwarded to that child process (shared_cache), whose reply comes back on our stdout."""
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            os._exit(0)
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            name = cmd.get("cmd") if isinstance(cmd, dict) else None
        except ValueError:
            _reply_error("not a JSON line")
            continue
        pid = cmd.get("pid") if isinstance(cmd, dict) else None
        if pid is not None and pid != os.getpid():
            deadline = time.monotonic() + 10  # its workers exist before make() has returned
            while _work is None and time.monotonic() < deadline:
                time.sleep(0.05)
            relay = _work.relay if _work is not None else None
            if relay is None or not relay(pid, cmd):
                _reply_error(f"no process {pid!r} among this run's workers")
        elif name == "leak_report":
            seconds = cmd.get("seconds", 5)
            if not heap:
                _reply_error("leak_report needs tracemalloc (no --no-heap)")
            elif isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                _reply_error("leak_report: seconds must be a number")
            else:
                # Its own thread: the scenario keeps running and we keep watching for EOF.
                seconds = min(max(float(seconds), 0.1), 60.0)
                t = threading.Thread(target=_leak_report, args=(seconds,), daemon=True)
                try:
                    t.start()
                except RuntimeError as e:  # e.g. no address space left for a thread stack
                    _reply_error(f"leak_report: {e}")
        elif name == "heap_snapshot":
            _reply_error("heap_snapshot is Node only; use leak_report")
        else:
            _reply_error(f"unknown command: {name!r}")


def _leak_report(seconds: float) -> None:
    emit(leaks.report(seconds, rss_bytes, ignore_file=__file__))
