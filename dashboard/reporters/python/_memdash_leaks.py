"""memdash's Python reporter, Find the leak: a tracemalloc diff over N seconds in the leak
lab's leak_report shape (the program's own lines first). Imported by the reporter only when a
leak report is asked for, so most programs never load it: :func:`begin` takes a snapshot, the
reporter goes on reporting for ``seconds``, then :func:`finish` answers with the lines that
grew, as the leak lab's Python workers do."""

import os
import time


def ignored() -> list:
    import tracemalloc

    return [
        tracemalloc.Filter(False, tracemalloc.__file__),  # the snapshots themselves
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        tracemalloc.Filter(False, __file__),  # this module's own work
        tracemalloc.Filter(False, "*_memdash_reporter.py"),  # the reporter's
    ]


def rss() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _own(filename: str) -> bool:
    """The program's own code: not the standard library, installed packages or frozen code."""
    import sysconfig

    if filename.startswith("<") or "-packages" + os.sep in filename:
        return False
    paths = sysconfig.get_paths()
    return not any(filename.startswith(paths[k] + os.sep) for k in ("stdlib", "platstdlib"))


def result(seconds: float, before, rss_before: int, traced_before: int) -> dict:
    """The leak lab's leak_report shape: the 10 lines that grew most, the program's own first."""
    import tracemalloc

    rss_after, traced_after = rss(), tracemalloc.get_traced_memory()[0]
    after = tracemalloc.take_snapshot().filter_traces(ignored())
    top = []
    for diff in after.compare_to(before, "lineno"):
        frame = diff.traceback[0]
        top.append(
            {
                "file": frame.filename,
                "line": frame.lineno,
                "own": _own(frame.filename),
                "size_diff": diff.size_diff,
                "count_diff": diff.count_diff,
                "size": diff.size,
                "count": diff.count,
                "via": [],
            }
        )
    top.sort(key=lambda e: (not (e["own"] and e["size_diff"] > 0), -e["size_diff"]))
    return {
        "type": "leak_report",
        "seconds": seconds,
        "rss_diff": rss_after - rss_before,
        "heap_diff": traced_after - traced_before,
        "top": top[:10],
    }


def _error(message: str) -> dict:
    return {"type": "error", "message": message}


def begin(rid, seconds, under_way):
    """A ``leak_report`` command: (None, the report's state) once its first snapshot is taken,
    or (an error reply, ``under_way`` unchanged)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return _error("leak_report: seconds must be a number"), under_way
    if under_way is not None:
        return _error("a leak report is already under way"), under_way
    import tracemalloc

    seconds = min(max(float(seconds), 0.1), 60.0)
    try:
        before = tracemalloc.take_snapshot().filter_traces(ignored())
    except Exception as e:
        return _error(f"leak_report failed: {e!r}"), None
    traced = tracemalloc.get_traced_memory()[0]
    return None, (rid, time.monotonic() + seconds, seconds, before, rss(), traced)


def finish(state) -> dict:
    """The reply to a leak report begun with :func:`begin`, once its time is up."""
    try:
        return result(*state[2:])
    except Exception as e:  # e.g. out of memory for the snapshot: say so, keep reporting
        return _error(f"leak_report failed: {e!r}")
