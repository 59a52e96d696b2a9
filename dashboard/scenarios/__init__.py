"""The leak lab's scenario catalogue: seven leak patterns, each leaky and fixed, Python and Node.

Pure data and small functions (no Flask, no psutil); ``dashboard/workers.py`` runs the programs.

Programs
    Python: ``python -m dashboard.scenarios.<id> --variant leaky|fixed [options]``
    Node:   ``node dashboard/scenarios/node/<id>.js --variant leaky|fixed [options]``
    ``command()`` starts node with ``--optimize-for-size`` (the heap levels off sooner) and, for
    heap_limit, ``--max-old-space-size=<limit_mb>``.
    Common options: ``--duration S`` (default 120; exit 0 when reached), ``--max-rss-mb N``
    (default 512; the worker checks its own RSS, for shared_cache the sum over its workers, at
    least 4 times a second), ``--no-heap`` (no heap reporting; Python: no tracemalloc).
    Each param below maps to ``--kebab-case``.

Exit codes
    0 duration reached (``done`` line) or stdin EOF; 3 over ``--max-rss-mb`` (``capped`` line);
    2 bad arguments. Anything else is a crash: Python heap_limit leaky dies with an uncaught
    MemoryError (exit 1, traceback on stderr); Node heap_limit leaky is aborted by V8 (SIGABRT,
    i.e. returncode -6 / exit 134 from a shell) after "JavaScript heap out of memory" on stderr.

stdout: JSON lines, one object each, flushed
    {"type": "hello", "runtime": "python"|"node", "scenario": id, "variant": v, "pid": int}
    {"type": "heap", "t": epoch_s, "heap_used": int, "heap_total": int, "external"?: int,
     "array_buffers"?: int}    once a second. Node: process.memoryUsage() (heapUsed, heapTotal,
     external, arrayBuffers). Python: tracemalloc current / peak; "external" only when the
     scenario knows what it holds outside the Python heap (offheap: mmapped bytes).
     shared_cache: summed over the parent and its workers.
    {"type": "capped", "reason": "rss 513 MiB over the 512 MiB cap"}   then exit 3
    {"type": "done", "reason": "duration reached"}                     then exit 0
    replies to commands (below); {"type": "error", "message": str} for bad or unknown ones.

stdin: JSON-line commands (only read when stdin is a pipe or socket, never from a terminal)
    {"cmd": "leak_report", "seconds": N}   Python only. Two tracemalloc snapshots N seconds apart
        (0.1..60), compared by line, in a background thread; the scenario keeps running. Reply
        {"type": "leak_report", "seconds": N, "top": [{"file", "line", "size_diff",
        "count_diff", "size", "count"}, ... up to 10]}; "file" is relative to the directory
        holding the dashboard package (e.g. "dashboard/scenarios/unbounded_cache.py").
    {"cmd": "heap_snapshot", "path": P}    Node only. v8.writeHeapSnapshot(P) (blocks the
        worker meanwhile); reply {"type": "heap_snapshot", "path": P}.
    EOF on stdin means memdash died: the worker exits at once.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
VARIANTS = ("leaky", "fixed")
RUNTIMES = ("python", "node")
NODE_MIN_MAJOR = 18

Number = Union[int, float]


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "int" | "float"
    default: Number
    min: Number
    max: Number
    unit: str
    help: str
    hidden: bool = False  # set by memdash itself, not shown as a field (redis_port)


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    summary: str
    leaks: str
    why: str
    fix: str
    runtimes: tuple
    params: tuple


def _common(*own: Param) -> tuple:
    return (
        Param("duration", "float", 120, 1, 600, "s", "stop after this long (exit 0)"),
        Param("max_rss_mb", "int", 512, 16, 2048, "MiB", "the worker stops itself above this RSS"),
        *own,
    )


def _rate(default, unit="items/s", help="items handled per second"):
    return Param("rate", "float", default, 1, 10000, unit, help)


def _item_kb(default, help="size of one item"):
    return Param("item_kb", "int", default, 1, 4096, "KiB", help)


SCENARIOS: dict = {
    s.id: s
    for s in (
        Scenario(
            id="unbounded_cache",
            title="Unbounded cache",
            summary="A cache keyed by request id that only ever grows.",
            leaks="Every response is stored in a dict/Map under its request id; nothing is "
            "ever removed, and ids never repeat, so the cache grows with every request.",
            why="A cache is a long-lived object: whatever it references stays alive (in V8 it "
            "ends up in the old generation, scanned by every full GC). Without a size limit "
            "and an expiry it is just a leak with a nice name.",
            fix="An LRU cache: at most max_items entries, evict the least recently used, and "
            "drop entries older than the TTL.",
            runtimes=RUNTIMES,
            params=_common(
                _rate(200, "req/s", "requests per second"),
                _item_kb(8, "size of one cached response"),
                Param("max_items", "int", 200, 1, 1_000_000, "entries", "fixed: LRU size"),
                Param("ttl", "float", 30, 0.1, 86400, "s", "fixed: seconds an entry may live"),
            ),
        ),
        Scenario(
            id="module_accumulator",
            title="Module-level accumulator",
            summary="A module-level list that every call appends to and nothing clears.",
            leaks="A module keeps a list at module level and every call appends to it; no one "
            "ever empties it (the seed's `var queue = []; exports.push = ...`).",
            why="Modules are loaded once and cached for the life of the process, so their "
            "globals are never collected; a module-level list is a process-lifetime list.",
            fix="Give callers a way to take the contents: a drain()/consume() call that "
            "returns the batch and starts empty, called regularly by the caller.",
            runtimes=RUNTIMES,
            params=_common(
                _rate(200, "calls/s", "calls per second"),
                _item_kb(8, "size of one recorded event"),
                Param("flush_every", "int", 100, 1, 1_000_000, "calls", "fixed: drain every N"),
            ),
        ),
        Scenario(
            id="slow_consumer",
            title="Slow consumer",
            summary="A queue filled faster than it is drained.",
            leaks="The producer pushes rate jobs a second, the consumer pops consumer_rate; "
            "the difference piles up in an unbounded in-memory queue.",
            why="An in-process queue has no limit of its own: if the producer is faster, "
            "the backlog is memory, and it only grows.",
            fix="Bound the queue: past max_len drop the oldest jobs (the seed's Shuff). "
            "If jobs must not be lost, use back-pressure (make the producer wait) or move the "
            "queue out of the process (Redis).",
            runtimes=RUNTIMES,
            params=_common(
                _rate(400, "jobs/s", "jobs pushed per second"),
                Param("consumer_rate", "float", 200, 1, 10000, "jobs/s", "jobs popped per second"),
                _item_kb(8, "size of one job"),
                Param("max_len", "int", 300, 1, 1_000_000, "jobs", "fixed: queue length kept"),
            ),
        ),
        Scenario(
            id="closure_retention",
            title="Closure retention",
            summary="Callbacks that capture a large object and are never removed.",
            leaks="Each request registers a callback on a long-lived list/emitter; the callback "
            "closes over the request's large object and is never unregistered.",
            why="A closure keeps alive every variable it uses (in V8, every variable any closure "
            "of that scope uses). Registered on something long-lived, it keeps them forever, "
            "like the seed's timer callback holding largeArr.",
            fix="Capture only what the callback needs (a size, an id), and unregister "
            "listeners when the request is over.",
            runtimes=RUNTIMES,
            params=_common(
                _rate(200, "req/s", "requests per second"),
                _item_kb(8, "size of the object each request builds"),
            ),
        ),
        Scenario(
            id="offheap",
            title="Off-heap memory (heap < rss)",
            summary="RSS climbs while the language heap stays flat.",
            leaks="Chunks of memory outside the language heap (Python: anonymous mmap; Node: "
            "Buffer) are kept in a list that nobody trims.",
            why="The heap only holds a small handle per chunk, so heap graphs and heap tools "
            "look fine while RSS grows: the seed's 'heap < rss'. Node shows it as external.",
            fix="Bound the pool: keep at most max_items chunks and release (Python: close the "
            "mmap) or reuse (Node: fill an old Buffer) the rest.",
            runtimes=RUNTIMES,
            params=_common(
                _rate(6, "chunks/s", "chunks allocated per second"),
                _item_kb(256, "size of one chunk"),
                Param("max_items", "int", 8, 1, 100_000, "chunks", "fixed: chunks kept"),
            ),
        ),
        Scenario(
            id="shared_cache",
            title="Per-process cache",
            summary="Each worker process keeps its own copy of the same cache.",
            leaks="N worker processes each cache the same keys in a local dict/Map; the data "
            "exists N times and every copy grows.",
            why="Processes cannot share their heaps: a local cache in a multi-process service "
            "costs N times its size, and each copy still needs its own limits.",
            fix="Keep the cache out of the processes, in Redis: one shared copy, keys with an "
            "expiry (SET ... EX ttl) so Redis stays bounded too.",
            runtimes=RUNTIMES,
            params=_common(
                Param("workers", "int", 3, 1, 8, "processes", "worker processes"),
                _rate(150, "lookups/s", "lookups per second per worker"),
                _item_kb(4, "size of one cached value"),
                Param("ttl", "int", 10, 1, 3600, "s", "fixed: seconds a key lives in Redis"),
                Param(
                    "redis_port",
                    "int",
                    6379,
                    1,
                    65535,
                    "",
                    "fixed: the Redis memdash started",
                    hidden=True,
                ),
            ),
        ),
        Scenario(
            id="heap_limit",
            title="Hitting the heap limit",
            summary="A leak runs into the memory limit and the process dies.",
            leaks="Every result is appended to a list that is never trimmed, until the limit.",
            why="Node stops at V8's heap limit (--max-old-space-size) with 'JavaScript heap out "
            "of memory', an abort, not an exception. Python has no heap limit; here RLIMIT_AS "
            "is set to start-up size + limit_mb and it dies with an uncaught MemoryError.",
            fix="Bounded retention: keep only the last max_items results; the same work runs "
            "forever far below the limit.",
            runtimes=RUNTIMES,
            params=_common(
                _rate(250, "items/s", "results per second"),
                _item_kb(8, "size of one result"),
                Param("max_items", "int", 500, 1, 1_000_000, "items", "fixed: results kept"),
                Param(
                    "limit_mb",
                    "int",
                    96,
                    16,
                    4096,
                    "MiB",
                    "Node: --max-old-space-size; Python: address space on top of start-up",
                ),
            ),
        ),
    )
}


def _get(scenario_id: str) -> Scenario:
    try:
        return SCENARIOS[scenario_id]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario_id!r}") from None


def validate_params(scenario: Union[Scenario, str], raw: Optional[dict]) -> dict:
    """All params of `scenario` with defaults filled in; ValueError on anything wrong."""
    sc = _get(scenario) if isinstance(scenario, str) else scenario
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ValueError("params must be an object")
    known = {p.name: p for p in sc.params}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"unknown param {unknown[0]!r} for {sc.id}; known: {', '.join(known)}")
    out = {}
    for p in sc.params:
        value = raw.get(p.name, p.default)
        ok = (int,) if p.type == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok):
            kind = "an integer" if p.type == "int" else "a number"
            raise ValueError(f"{p.name} must be {kind}, not {value!r}")
        if value != value or not p.min <= value <= p.max:  # NaN fails the first test
            raise ValueError(f"{p.name} must be between {p.min} and {p.max} {p.unit}".rstrip())
        out[p.name] = float(value) if p.type == "float" else value
    return out


def command(
    scenario_id: str,
    runtime: str,
    variant: str,
    params: Optional[dict] = None,
    *,
    python: str = sys.executable,
    node: str = "node",
    no_heap: bool = False,
) -> list:
    """The argv that runs one scenario. Python needs the cwd (or sys.path) to hold `dashboard`."""
    sc = _get(scenario_id)
    if runtime not in sc.runtimes:
        raise ValueError(f"unknown runtime {runtime!r}; one of {', '.join(sc.runtimes)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    values = validate_params(sc, params)
    flags = ["--variant", variant]
    for name, value in values.items():
        text = repr(value) if isinstance(value, float) else str(value)
        flags += ["--" + name.replace("_", "-"), text]
    if no_heap:
        flags.append("--no-heap")
    if runtime == "python":
        return [python, "-m", f"dashboard.scenarios.{sc.id}", *flags]
    # --optimize-for-size: V8 grows the heap less eagerly, so fixed variants level off within
    # seconds instead of ~30 (the same flag for leaky and fixed; _worker.js sets it too).
    argv = [node, "--optimize-for-size"]
    if sc.id == "heap_limit":
        argv.append(f"--max-old-space-size={values['limit_mb']}")
    return [*argv, str(NODE_DIR / f"{sc.id}.js"), *flags]


def _path(scenario_id: str, runtime: str) -> Path:
    sc = _get(scenario_id)
    if runtime not in sc.runtimes:
        raise ValueError(f"unknown runtime {runtime!r}")
    return HERE / f"{sc.id}.py" if runtime == "python" else NODE_DIR / f"{sc.id}.js"


def source_regions(scenario_id: str, runtime: str) -> dict:
    """The leaky and fixed code as it is in the file now (read on every call), dedented."""
    path = _path(scenario_id, runtime)
    mark = "#" if runtime == "python" else "//"
    found: dict = {"leaky": [], "fixed": []}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(rf"\s*{mark} region (leaky|fixed)\s*", line)
        if m:
            current = found[m.group(1)]
            current.append([])
        elif re.fullmatch(rf"\s*{mark} endregion\s*", line):
            current = None
        elif current is not None:
            current[-1].append(line)
    out = {}
    for name, blocks in found.items():
        if not blocks:
            raise ValueError(f"{path.name} has no '{mark} region {name}'")
        out[name] = "\n\n".join(textwrap.dedent("\n".join(b)).strip("\n") for b in blocks) + "\n"
    out["path"] = path.relative_to(HERE.parent.parent).as_posix()
    return out


@functools.cache
def node_status() -> dict:
    """Is a usable node (>= 18) on PATH? Cached: call node_status.cache_clear() to re-check."""
    exe = shutil.which("node")
    if exe is None:
        return {"available": False, "reason": "node is not on PATH", "version": None}
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
        version = out.stdout.strip()
        major = int(version.lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return {"available": False, "reason": f"cannot run node --version: {e}", "version": None}
    if major < NODE_MIN_MAJOR:
        reason = f"node {version} is too old (need {NODE_MIN_MAJOR} or newer)"
        return {"available": False, "reason": reason, "version": version}
    return {"available": True, "reason": None, "version": version}


def _runtime_status(runtime: str) -> dict:
    if runtime == "node":
        st = node_status()
        return {"id": "node", "available": st["available"], "reason": st["reason"]}
    return {"id": runtime, "available": True, "reason": None}


def catalogue() -> list:
    """Everything the page needs about the scenarios, JSON-ready."""
    out = []
    for sc in SCENARIOS.values():
        out.append(
            {
                "id": sc.id,
                "title": sc.title,
                "summary": sc.summary,
                "leaks": sc.leaks,
                "why": sc.why,
                "fix": sc.fix,
                "runtimes": [_runtime_status(r) for r in sc.runtimes],
                "variants": list(VARIANTS),
                "params": [asdict(p) for p in sc.params],
                "code": {r: source_regions(sc.id, r) for r in sc.runtimes},
            }
        )
    return out
