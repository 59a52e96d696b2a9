"""Recording: what it costs the sampler's process, how big the file gets, how fast it exports.

1. CPU and size: a Sampler (the server's sampling loop, no web layer) keeps ``--pids`` idle
   processes at 10 Hz with a viewer-like holder (so USS/PSS are read once a second too), for
   ``--seconds``, once without and once with a RecorderSink + Recorder (its writer thread is in
   the same process). CPU is this process's user + sys over the window, as % of one core; the
   file's size (with its WAL) is scaled to an hour.
2. Export: a synthetic hour of ``--export-pids`` processes at 10 Hz (every field on one
   sample in ten) written with the Recorder, then exported to CSV (time taken) and to the HTML
   report (its size; plotly.min.js, inlined, is most of it).

    .venv/bin/python benchmarks/bench_recording.py [--seconds 20] [--pids 20] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import MiB, header, note, print_table, progress, synthetic_recording

from dashboard.export import to_csv
from dashboard.recorded import Recording
from dashboard.recorder_sink import RecorderSink
from dashboard.recording import Recorder
from dashboard.report import write_report
from dashboard.sampler import Sampler


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def sample_for(seconds: float, pids: list[int], path: Path | None) -> tuple[float, int, int]:
    """(CPU % of one core, bytes written, samples recorded) over ``seconds`` of sampling."""
    sampler = Sampler(interval=0.1, detail_interval=1.0)
    recorder = None
    if path is not None:
        recorder = Recorder(path)
        sampler.add_sink(RecorderSink(recorder))
    for pid in pids:
        sampler.watch(pid, False, "bench")
    sampler.start()
    time.sleep(2)  # warm-up: the first detail reads, the file's first pages
    c0, w0 = cpu(), time.monotonic()
    time.sleep(seconds)
    used, wall = cpu() - c0, time.monotonic() - w0
    sampler.stop()
    size = written = 0
    if recorder is not None:
        recorder.flush()
        recorder.close()
        size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        written = recorder.written
    return 100 * used / wall, size, written


def synthetic_hour(path: Path, processes: int) -> int:
    return synthetic_recording(path, processes, 36000, time.time() - 3600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--pids", type=int, default=20)
    parser.add_argument("--export-pids", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 8
    header("Recording: CPU, file size, export")
    idle = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
            for _ in range(args.pids)]  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as tmp:
            progress(f"sampling {args.pids} processes for {args.seconds:.0f} s without recording")
            base, _, _ = sample_for(args.seconds, [p.pid for p in idle], None)
            progress("... and with recording")
            rec_cpu, size, written = sample_for(args.seconds, [p.pid for p in idle],
                                                Path(tmp) / "live.sqlite")  # fmt: skip
            empty = Path(tmp) / "empty.sqlite"
            Recorder(empty).close()  # the schema's pages: a fixed cost, not a rate
            rate = written / (args.pids * 10)  # seconds of samples the file holds
            per_hour = (size - empty.stat().st_size) * 3600 / rate
            rows = [
                ["sampler CPU without recording", f"{base:.2f} % of a core", ""],
                ["sampler CPU with recording", f"{rec_cpu:.2f} % of a core",
                 f"+{100 * (rec_cpu - base) / base:.1f} % (target ≤ 10 %)"],
                ["file per hour", f"{per_hour / MiB:.1f} MiB",
                 f"{written} samples ({size / 1024:.0f} KiB) (target ≤ 30 MiB)"],
            ]  # fmt: skip
            progress(f"writing a synthetic hour of {args.export_pids} processes at 10 Hz")
            hour = Path(tmp) / "hour.sqlite"
            count = synthetic_hour(hour, args.export_pids)
            with Recording(hour) as rd:
                t = time.perf_counter()
                rows_out = to_csv(rd, Path(tmp) / "hour.csv")
                csv_s = time.perf_counter() - t
                t = time.perf_counter()
                report = write_report(rd, Path(tmp) / "hour.html")
                report_s = time.perf_counter() - t
            assert rows_out == count
            rows += [
                [f"CSV export, 1 h × {args.export_pids} processes", f"{csv_s:.2f} s",
                 f"{rows_out} rows, {(Path(tmp) / 'hour.csv').stat().st_size / MiB:.0f} MiB"
                 " (target < 5 s)"],
                [f"HTML report, 1 h × {args.export_pids} processes", f"{report / MiB:.2f} MiB",
                 f"built in {report_s:.2f} s (target < 5 MiB)"],
                ["recording file, 1 h × 5 (synthetic)", f"{hour.stat().st_size / MiB:.1f} MiB", ""],
            ]  # fmt: skip
    finally:
        for p in idle:
            p.kill()
            p.wait()
    print_table(["what", "figure", "notes"], rows)
    note("CPU is this process's (the sampler and the recorder's writer thread); the server adds "
         "its web layer on top, the same with or without recording.")  # fmt: skip


if __name__ == "__main__":
    main()
