"""The leak lab's scenario catalogue: seven leak patterns, each leaky and fixed, Python and Node.

The catalogue itself (ids, texts, params with defaults, bounds and units) is data in
``catalogue.json``, read here and by ``node/_worker.js``; this module builds the
:class:`Scenario` objects from it, validates params (the one place that does) and builds the
command lines. Pure data and small functions (no Flask, no psutil); ``dashboard/workers.py``
runs the programs.

Programs
    Python: ``python -m dashboard.scenarios.<id> --variant leaky|fixed [options]``
    Node:   ``node dashboard/scenarios/node/<id>.js --variant leaky|fixed [options]``
    ``command()`` starts node with ``--optimize-for-size`` (the heap levels off sooner) and, for
    heap_limit, ``--max-old-space-size=<limit_mb>``.
    Every param maps to ``--kebab-case``; the workers only type them (memdash validated them).
    Common params: ``--duration S`` (exit 0 when reached), ``--max-rss-mb N`` (the worker checks
    its own RSS, for shared_cache the sum over its workers, at least 4 times a second).
    Flags: ``--no-heap`` (no heap reporting; Python: no tracemalloc); ``--dry-run`` (print
    ``{"type": "params", "runtime", "scenario", "variant", "params": {name: value}}``, the
    effective params under their catalogue names, and exit 0).

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
    {"type": "capped", "reason": "memory cap 512 MiB (rss 513 MiB)"}   then exit 3
    {"type": "done", "reason": "duration reached"}                     then exit 0
    replies to commands (below), each naming the "pid" of the process that ran it;
    {"type": "error", "message": str, "pid": int} for bad or unknown ones.

stdin: JSON-line commands (only read when stdin is a pipe or socket, never from a terminal)
    Any command may carry "pid": a process other than the worker itself is one of its own
    worker processes (shared_cache): the worker forwards the command to that child (on the
    child's stdin, a pipe from its parent) and relays the child's reply (Python: the child's
    stdout; Node: the IPC channel) to its own stdout; an unknown pid gets an error.
    {"cmd": "leak_report", "seconds": N}   Python only. Two tracemalloc snapshots N seconds apart
        (0.1..60), by traceback (_leaks.NFRAMES frames), in a background thread; the scenario
        keeps running. Each allocation is charged to the scenario's own line that led to it,
        the standard library's and memdash's frames below that line folded under it. Reply
        {"type": "leak_report", "pid", "seconds": N, "rss_diff", "heap_diff" (tracemalloc's
        traced total), "top": [{"file", "line", "own": bool, "size_diff", "count_diff", "size",
        "count", "via": [{"frame": "re/_parser.py:552", "size_diff"}]}, ... up to 10]}: the
        scenario's own lines that grew first ("own"), then other places by growth; "file" is
        relative to the directory holding the dashboard package (e.g.
        "dashboard/scenarios/unbounded_cache.py") or to the standard library's.
    {"cmd": "heap_snapshot", "path": P}    Node only. v8.writeHeapSnapshot(P) (blocks the
        worker meanwhile); reply {"type": "heap_snapshot", "path": P, "pid", "seconds",
        "rss_diff", "heap_diff", "external_diff"}: how RSS, heapUsed and external moved over
        the last seconds before the snapshot (a flat heap under a growing RSS: off-heap).
    EOF on stdin means memdash died: the worker exits at once.
"""

from __future__ import annotations

import functools
import json
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
CATALOGUE_PATH = HERE / "catalogue.json"
RUNTIMES = ("python", "node")  # the runtimes memdash knows how to start
TYPES = ("int", "float")  # of a param
NODE_MIN = (18, 3)  # util.parseArgs, used by node/_worker.js, came with 18.3
NOTES = ("what", "why", "fix", "look")  # the keys of a scenario's speaker notes

Number = Union[int, float]


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # one of TYPES
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
    # speaker notes {"what", "why", "fix", "look"}: what leaks, why, the fix, what to look at
    # on the chart; optional in catalogue.json
    notes: Optional[dict] = None


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


def load_catalogue(path: Path) -> tuple[tuple, dict]:
    """(VARIANTS, SCENARIOS) from catalogue.json, checked so that a mistake fails at import
    (an unknown or missing key is a TypeError from the dataclasses)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    common = tuple(Param(**p) for p in data["common_params"])
    found: dict = {}
    for raw in data["scenarios"]:
        own = tuple(Param(**p) for p in raw["params"])
        sc = Scenario(**{**raw, "runtimes": tuple(raw["runtimes"]), "params": common + own})
        names = [p.name for p in sc.params]
        problems = [f"param {p.name}: type {p.type!r}" for p in sc.params if p.type not in TYPES]
        if sc.id in found:
            problems.append("duplicate id")
        if sc.notes is not None and (
            not isinstance(sc.notes, dict)
            or set(sc.notes) != set(NOTES)
            or not all(isinstance(v, str) and v.strip() for v in sc.notes.values())
        ):
            problems.append(f"notes must have the texts {', '.join(NOTES)}")
        if not set(sc.runtimes) <= set(RUNTIMES):
            problems.append(f"runtimes {sc.runtimes}")
        if len(set(names)) < len(names):
            problems.append("duplicate param")
        try:
            validate_params(sc, {})  # the defaults must be valid values
        except ValueError as e:
            problems.append(f"default: {e}")
        if problems:
            raise ValueError(f"{path.name}: {sc.id}: {'; '.join(problems)}")
        found[sc.id] = sc
    return tuple(data["variants"]), found


VARIANTS, SCENARIOS = load_catalogue(CATALOGUE_PATH)


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
    """Is a usable node (>= NODE_MIN) on PATH? Cached: call node_status.cache_clear() to
    re-check."""
    exe = shutil.which("node")
    if exe is None:
        return {"available": False, "reason": "node is not on PATH", "version": None}
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
        version = out.stdout.strip()
        major, minor = (int(n) for n in version.lstrip("v").split(".")[:2])
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return {"available": False, "reason": f"cannot run node --version: {e}", "version": None}
    if (major, minor) < NODE_MIN:
        need = ".".join(map(str, NODE_MIN))
        reason = f"node {version} is too old (need {need} or newer)"
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
        if sc.notes:
            out[-1]["notes"] = {key: sc.notes[key] for key in NOTES}
    return out
