"""A leak report from tracemalloc, for the scenario workers (``_worker.py``): what grew between
two snapshots, charged to the program's own lines, with the standard library's and memdash's
frames folded under them. See ``dashboard/scenarios/__init__.py`` for the reply's fields."""

from __future__ import annotations

import fnmatch
import os
import sysconfig
import time
import tracemalloc
from typing import Callable

# Frames kept per allocation: enough to see past the standard library (re.compile is ~6 deep)
# to the scenario line that called it, so a leak report can fold those frames under it.
NFRAMES = 12
_HERE = os.path.dirname(os.path.abspath(__file__))
_PKG_ROOT = os.path.dirname(os.path.dirname(_HERE))
_STDLIB = os.path.normpath(sysconfig.get_paths()["stdlib"]) + os.sep


def _own(filename: str) -> bool:
    """A frame of the program's own code: a scenario file, or a script of the user's; not the
    standard library, an installed package, memdash's runner (_worker.py), generated code."""
    if filename.startswith(("<", _STDLIB)) or f"{os.sep}site-packages{os.sep}" in filename:
        return False
    if filename.startswith(os.path.dirname(_HERE) + os.sep):  # memdash's dashboard package
        return os.path.dirname(filename) == _HERE and not os.path.basename(filename).startswith("_")
    return True


def report(seconds: float, rss: Callable[[], int], ignore_file: str) -> dict:
    """Two tracemalloc snapshots `seconds` apart, compared by traceback; each allocation is
    charged to the scenario's own line that led to it, with the standard library's and
    memdash's frames below it folded under that line ("via"). The scenario's lines that grew
    come first, then what grew elsewhere; 10 at most. With RSS and the traced total, so a
    growth outside the Python heap (mmap) can be told apart."""
    ignore = [
        # the report's own work (snapshots, their filters: fnmatch and re), at any depth
        tracemalloc.Filter(False, tracemalloc.__file__, all_frames=True),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        tracemalloc.Filter(False, ignore_file),  # the runner's JSON lines and bookkeeping
    ]
    for rule in ignore:  # compile the filters' patterns (fnmatch, re) before, not between
        fnmatch.fnmatch(__file__, rule.filename_pattern)
    before = tracemalloc.take_snapshot().filter_traces(ignore)
    # (read after the first snapshot and before the second: they are traced too)
    rss_before, traced_before = rss(), tracemalloc.get_traced_memory()[0]
    time.sleep(seconds)
    rss_after, traced_after = rss(), tracemalloc.get_traced_memory()[0]
    after = tracemalloc.take_snapshot().filter_traces(ignore)
    sites: dict = {}
    for stat_diff in after.compare_to(before, "traceback"):
        if not stat_diff.size_diff and not stat_diff.count_diff:
            continue  # did not change: not news
        frames = list(reversed(stat_diff.traceback))  # the allocating frame first
        site = next((f for f in frames if _own(f.filename)), None)
        key = (site or frames[0]).filename, (site or frames[0]).lineno
        entry = sites.setdefault(
            key,
            {
                "file": _short(key[0]),
                "line": key[1],
                "own": site is not None,
                "size_diff": 0,
                "count_diff": 0,
                "size": 0,
                "count": 0,
                "via": {},
            },
        )
        for name in ("size_diff", "count_diff", "size", "count"):
            entry[name] += getattr(stat_diff, name)
        if site is not None and frames[0] is not site:  # allocated below the scenario's line
            via = f"{_short(frames[0].filename)}:{frames[0].lineno}"
            entry["via"][via] = entry["via"].get(via, 0) + stat_diff.size_diff
    ranked = sorted(
        sites.values(), key=lambda e: (not (e["own"] and e["size_diff"] > 0), -e["size_diff"])
    )
    top = []
    for entry in ranked[:10]:
        via = sorted(((f, n) for f, n in entry["via"].items() if n > 0), key=lambda kv: -kv[1])[:3]
        entry["via"] = [{"frame": frame, "size_diff": size} for frame, size in via]
        top.append(entry)
    return {
        "type": "leak_report",
        "pid": os.getpid(),
        "seconds": seconds,
        "rss_diff": rss_after - rss_before,
        "heap_diff": traced_after - traced_before,
        "top": top,
    }


def _short(path: str) -> str:
    """dashboard/scenarios/x.py rather than an absolute path, when it is ours; re/_parser.py
    for the standard library's."""
    if path.startswith(_STDLIB):
        return os.path.relpath(path, _STDLIB)
    if path.startswith(_PKG_ROOT + os.sep):
        return os.path.relpath(path, _PKG_ROOT)
    return path
