"""Server memory with many watched processes (issue 11: "under 150 MiB with 200 watched
processes after 10 minutes").

``--pids`` (200) idle Python children, watched at 10 Hz across as many viewers as the
per-viewer limit (32) needs, for ``--minutes`` (10; ``--quick``: 2): the server's RSS and its
histories' size now and then. Histories grow with their samples (nothing is pre-allocated), so
the figure that matters is the last one.

    .venv/bin/python benchmarks/bench_memory.py [--pids 200] [--minutes 10] [--quick]
"""

from __future__ import annotations

import argparse
import time

import psutil
from _common import IdleProcesses, MiB, header, note, print_table, progress

from dashboard.testing import Server, Viewer

PER_VIEWER = 32  # the server's MAX_WATCHES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pids", type=int, default=200)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="2 minutes")
    args = p.parse_args()
    minutes = 2.0 if args.quick else args.minutes
    header("memdash memory: many watched processes")
    rows = []
    with IdleProcesses(args.pids) as idle, Server(interval=0.1) as server:
        sp = psutil.Process(server.pid)
        pids = idle.pids
        viewers = []
        try:
            for i in range(0, len(pids), PER_VIEWER):
                viewer = Viewer(server.url)
                viewers.append(viewer)
                for pid in pids[i : i + PER_VIEWER]:
                    ack = viewer.call("watch", {"pid": pid})
                    assert "error" not in ack, ack
            progress(f"{len(pids)} processes watched by {len(viewers)} viewers; {minutes:g} min")
            start = time.monotonic()
            marks = [m for m in (0.5, 1, 2, 5, 10) if m <= minutes] or [minutes]
            if marks[-1] != minutes:
                marks.append(minutes)
            for mark in marks:
                time.sleep(max(0.0, start + mark * 60 - time.monotonic()))
                rss = sp.memory_info().rss
                rows.append([f"{mark:g} min", f"{rss / MiB:.1f}", f"{len(viewers)}"])
                progress(f"{mark:g} min: server RSS {rss / MiB:.1f} MiB")
        finally:
            for viewer in viewers:
                viewer.close()
    print_table(["after", "server RSS MiB", "viewers"], rows)
    note(
        f"{args.pids} idle Python children watched at 10 Hz (detail every 1 s), up to "
        f"{PER_VIEWER} per viewer; recording on (the default). Target: < 150 MiB after 10 min."
    )


if __name__ == "__main__":
    main()
