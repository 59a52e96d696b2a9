"""The page in headless Chromium: is it smooth at 10 Hz with 10 series?

Issue: "smooth at 10 Hz with 10 series: update with Plotly.extendTraces, not full redraws".

Set-up: ``--series`` Python children that each allocate 256 KiB a second and drop it all every
20 s (so every line moves); the real server (``python -m dashboard --interval 0.1``); Debian's
Chromium through Playwright (``tests/_browser.py``), one page on ``/?pid=...&window=300``
watching every child. Before any page script runs, an init script:

- counts ``requestAnimationFrame`` callbacks (its own loop: frames per second, frame gaps);
- observes ``longtask`` entries (main-thread tasks over 50 ms);
- wraps ``Plotly.react`` / ``newPlot`` / ``redraw`` (full redraws), ``extendTraces``,
  ``relayout`` and ``restyle`` as soon as ``/assets/plotly.min.js`` assigns ``window.Plotly``:
  a count per call and the synchronous time spent in it (Plotly draws SVG synchronously, so
  this is the chart update's main-thread time). ``extendTraces`` re-runs Plotly's plot
  pipeline internally (its own call, not the global ``redraw``): that time is extendTraces'.

Once every series is on the chart, ``--warmup`` seconds pass, the heap is garbage-collected and
the ``--seconds`` window starts. CDP ``Performance.getMetrics`` at the window's ends (and every
``--slice`` seconds, for the over-time table) gives the renderer's main-thread time
(ScriptDuration, TaskDuration, Layout, RecalcStyle; as % of one core), the JS heap and DOM node
counts; heap and nodes are read again after a GC at the end. Calls made while the page loads
(the first draw) are counted apart from the window.

Heap: the chart keeps at most window x 10 Hz x series points, but each watch also buffers up to
1 h of samples (``MAX_SAMPLES`` in static/js/state.js) whatever the window, so the heap grows
for the first hour by design; "retained heap per sample" is the figure to extrapolate. Only a run
longer than the window (``--seconds 330``, or ``--window 60 --seconds 90``) shows the chart at
a full window, where points stop growing.

Not a test: nothing asserts; it prints. Run it on an otherwise idle machine: with 2 cores any
other load shows up in fps and long tasks (the report prints the whole machine's CPU use).

    .venv/bin/python benchmarks/bench_page.py [--seconds 60] [--quick] [--series 10] [--window 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import (
    ROOT,
    IdleProcesses,
    MiB,
    header,
    note,
    percentile,
    print_table,
    progress,
)

from dashboard.testing import Server

sys.path.insert(0, str(ROOT / "tests"))
from _browser import chromium_path, launch_chromium  # noqa: E402

# A target whose memory moves: +256 KiB a second (touched, so RSS sees it), all dropped every
# 20 s; the phase differs per child so the ten lines do not coincide.
WOBBLER = """
import sys, time
held = []
phase = int(sys.argv[1])
while True:
    held.append(b"x" * (256 * 1024))
    if len(held) > 20 + phase:
        held.clear()
    time.sleep(1)
"""

# Runs before the page's own scripts (Playwright add_init_script). Raw data only: the
# analysis is done in Python.
INSTRUMENT = """
(() => {
  const b = (window.__bench = { frames: [], longtasks: [], calls: [] });
  const tick = (now) => { b.frames.push(now); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { b.longtaskError = String(e); }

  const WRAP = ["react", "newPlot", "redraw", "extendTraces", "relayout", "restyle", "update"];
  let plotly;
  // The bundle ends with `window.Plotly = Plotly`. Its exports may be read-only getters, so
  // the page gets a copy whose functions are wrapped (same behaviour, plus a log entry).
  Object.defineProperty(window, "Plotly", {
    configurable: true,
    get() { return plotly; },
    set(real) {
      plotly = Object.create(null);
      for (const k of Object.keys(real)) plotly[k] = real[k];
      for (const name of WRAP) {
        const fn = real[name];
        if (typeof fn !== "function") continue;
        plotly[name] = function (...args) {
          const t0 = performance.now();
          try { return fn.apply(this, args); }
          finally { b.calls.push([name, t0, performance.now() - t0]); }
        };
      }
    },
  });
})();
"""

FULL_REDRAWS = ("react", "newPlot", "redraw")


def metrics(cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def after_gc(cdp) -> dict[str, float]:
    """Metrics right after a full garbage collection (what is really retained)."""
    cdp.send("HeapProfiler.collectGarbage")
    return metrics(cdp)


def checkpoint(page, cdp) -> dict:
    """Page time (performance.now, ms), plotted points (all series) and CDP metrics."""
    now, points = page.evaluate(
        "[performance.now(), window.memdash.traces().reduce((n, t) => n + t.x.length, 0)]"
    )
    return {"p": now, "points": points, "m": metrics(cdp)}


def chromium_version() -> str:
    try:
        out = subprocess.run([chromium_path(), "--version"], capture_output=True, text=True)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def run(args) -> None:
    from playwright.sync_api import sync_playwright

    progress(f"starting {args.series} targets and memdash (--interval {args.interval})")
    with IdleProcesses(args.series, WOBBLER) as targets, Server(interval=args.interval) as server:
        query = "&".join(f"pid={pid}" for pid in targets.pids)
        url = f"{server.url}/?{query}&metric=rss&window={args.window}&theme=dark"
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                context = browser.new_context(viewport={"width": 1600, "height": 900})
                context.add_init_script(INSTRUMENT)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")
                result = measure(args, page, cdp, url)
                result["browser"] = f"{chromium_version()}, headless, 1600x900"
                result["errors"] = errors
            finally:
                browser.close()
    report(args, result)


def measure(args, page, cdp, url: str) -> dict:
    progress(f"opening the page with {args.series} series")
    t_open = time.monotonic()
    page.goto(url)
    page.wait_for_function(
        """(n) => document.body.dataset.connection === "connected"
            && window.memdash && window.memdash.traces().length === n
            && window.memdash.traces().every((t) => t.x.length > 0)""",
        arg=args.series,
        timeout=30_000,
    )
    ready_s = time.monotonic() - t_open
    progress(f"all {args.series} series plotted after {ready_s:.1f} s; warm-up {args.warmup} s")
    time.sleep(args.warmup)

    gc_start = after_gc(cdp)
    load_start = load()
    progress(f"measuring for {args.seconds:g} s (load {load_start})")
    w0 = time.monotonic()
    cpu0 = cpu_jiffies()
    checkpoints = [checkpoint(page, cdp)]
    while (elapsed := time.monotonic() - w0) < args.seconds - 0.05:
        time.sleep(min(args.slice, args.seconds - elapsed))
        checkpoints.append(checkpoint(page, cdp))
    data = page.evaluate(
        """() => ({
            frames: window.__bench.frames,
            longtasks: window.__bench.longtasks,
            longtaskError: window.__bench.longtaskError || null,
            calls: window.__bench.calls,
            connection: document.body.dataset.connection,
        })"""
    )
    cpu1 = cpu_jiffies()
    gc_end = after_gc(cdp)
    return {
        "machine_busy": 100 * (cpu1[0] - cpu0[0]) / max(1, cpu1[1] - cpu0[1]),
        "ready_s": ready_s,
        "checkpoints": checkpoints,
        "gc": (gc_start, gc_end),
        "load": (load_start, load()),
        **data,
    }


class Window:
    """What the page recorded between page times ``p0`` and ``p1`` (ms)."""

    def __init__(self, r: dict, a: dict, b: dict):
        self.p0, self.p1 = a["p"], b["p"]
        self.seconds = (self.p1 - self.p0) / 1000
        self.m0, self.m1 = a["m"], b["m"]
        self.points = (a["points"], b["points"])
        inside = self.inside
        self.frames = [t for t in r["frames"] if inside(t)]
        self.longtasks = [d for t, d in r["longtasks"] if inside(t)]
        self.calls = [(n, ms) for n, t, ms in r["calls"] if inside(t)]

    def inside(self, t: float) -> bool:
        return self.p0 <= t < self.p1

    def fps(self) -> list[int]:
        """Frames in each whole second of the window."""
        buckets = [0] * max(1, int(self.seconds))
        for t in self.frames:
            i = int((t - self.p0) / 1000)
            if i < len(buckets):
                buckets[i] += 1
        return buckets

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.frames, self.frames[1:], strict=False)]

    def count(self, names) -> int:
        return sum(1 for n, _ in self.calls if n in names)

    def ms(self, names=None) -> list[float]:
        return [ms for n, ms in self.calls if names is None or n in names]

    def core(self, metric: str) -> float:
        """A CDP duration metric over the window, as % of one core."""
        return 100 * (self.m1[metric] - self.m0[metric]) / self.seconds


def report(args, r: dict) -> None:
    cps = r["checkpoints"]
    w = Window(r, cps[0], cps[-1])
    before = [n for n, t, _ in r["calls"] if t < w.p0]
    gc0, gc1 = r["gc"]
    added = w.points[1] - w.points[0]
    fps, gaps, extend = w.fps(), w.gaps(), w.ms(("extendTraces",))
    full = w.count(FULL_REDRAWS)
    chart_ms = sum(w.ms()) / w.seconds
    heap0, heap1 = w.m0["JSHeapUsedSize"], w.m1["JSHeapUsedSize"]
    cap = args.series * args.window * round(1 / args.interval)

    header(f"Page: {args.series} series at {1 / args.interval:g} Hz in headless Chromium")
    print(f"- browser: {r['browser']}")
    print(
        f"- set-up: {args.series} targets (+256 KiB/s each), server --interval {args.interval}, "
        f"chart window {args.window} s, warm-up {args.warmup:g} s, measured {w.seconds:.1f} s"
    )
    print(
        f"- whole machine CPU busy during the window: {r['machine_busy']:.0f} % of "
        f"{os.cpu_count()} cores (server, targets, Chromium, and anything else running); "
        f"load average at start / end: {r['load'][0]} / {r['load'][1]}"
    )
    print(f"- page ready (every series plotted) {r['ready_s']:.1f} s after goto\n")

    def ms3(values: list[float]) -> str:
        if not values:
            return "–"
        return f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f} / {max(values):.1f} ms"

    rows = [
        (
            "frames per second: median (worst 1 s)",
            f"{statistics.median(fps):g} ({min(fps)})",
            "≥ 30",
        ),
        ("frame gap: p95 / max", f"{percentile(gaps, 95):.1f} / {max(gaps, default=0):.1f} ms", ""),
        (
            "long tasks (> 50 ms): count / total / max",
            f"{len(w.longtasks)} / {sum(w.longtasks):.0f} ms / "
            f"{max(w.longtasks, default=0):.0f} ms",
            "≈ 0",
        ),
        ("full redraws (react/newPlot/redraw) while streaming", str(full), "0"),
        (
            "full redraws while loading (first draw)",
            str(sum(n in FULL_REDRAWS for n in before)),
            "≥ 1",
        ),
        ("extendTraces calls", f"{len(extend)} ({len(extend) / w.seconds:.1f}/s)", "≈ 10/s"),
        ("relayout / restyle calls", str(w.count(("relayout", "restyle"))), "0"),
        ("extendTraces time: median / p95 / max", ms3(extend), ""),
        (
            "chart update (time in Plotly calls)",
            f"{chart_ms:.0f} ms/s = {chart_ms / 10:.1f} % of a core",
            "",
        ),
        (
            "script time (CDP ScriptDuration)",
            f"{w.core('ScriptDuration'):.1f} % of a core",
            "< 20 %",
        ),
        (
            "layout + style recalc (CDP)",
            f"{w.core('LayoutDuration') + w.core('RecalcStyleDuration'):.1f} % of a core",
            "",
        ),
        ("main thread busy (CDP TaskDuration)", f"{w.core('TaskDuration'):.1f} % of a core", ""),
        ("JS heap used: start / end", f"{heap0 / MiB:.1f} / {heap1 / MiB:.1f} MiB", ""),
        (
            "JS heap after GC: start / end",
            f"{gc0['JSHeapUsedSize'] / MiB:.1f} / {gc1['JSHeapUsedSize'] / MiB:.1f} MiB",
            "bounded",
        ),
        (
            "retained heap per sample added (after GC)",
            f"{(gc1['JSHeapUsedSize'] - gc0['JSHeapUsedSize']) / max(added, 1) / 1024:.2f} KiB",
            "",
        ),
        ("plotted points, all series: start / end", f"{w.points[0]} / {w.points[1]}", f"≤ {cap}"),
        ("DOM nodes after GC: start / end", f"{gc0['Nodes']:.0f} / {gc1['Nodes']:.0f}", "flat"),
    ]
    print_table(["metric", "value", "target"], rows)

    slices = []
    for a, b in zip(cps, cps[1:], strict=False):
        s = Window(r, a, b)
        sfps = s.fps()
        slices.append(
            (
                f"{(s.p0 - w.p0) / 1000:.0f}–{(s.p1 - w.p0) / 1000:.0f}",
                s.points[1],
                f"{statistics.median(sfps):g}",
                len(s.longtasks),
                s.count(FULL_REDRAWS),
                f"{percentile(s.ms(('extendTraces',)), 50):.1f}",
                f"{s.core('ScriptDuration'):.1f}",
                f"{s.core('TaskDuration'):.1f}",
                f"{s.m1['JSHeapUsedSize'] / MiB:.1f}",
            )
        )
    print(f"Over time ({args.slice:g} s slices):\n")
    print_table(
        [
            "s",
            "points",
            "fps",
            "long tasks",
            "full redraws",
            "extendTraces ms (median)",
            "script %",
            "busy %",
            "heap MiB",
        ],
        slices,
    )

    if r["longtaskError"]:
        note(f"long tasks not observed: {r['longtaskError']}")
    if r["errors"]:
        note("page errors: " + "; ".join(r["errors"][:5]))
    if r["connection"] != "connected":
        note(f"the page was {r['connection']} at the end of the window")
    note(
        "fps = this script's own requestAnimationFrame loop, which shares frames with the "
        "chart's. Chart update = synchronous time inside the wrapped Plotly calls (Plotly draws "
        "SVG synchronously); script time = all page JavaScript (Socket.IO decoding, stats "
        "strip, chart). % of a core = main-thread time / wall time. Headless Chromium without "
        "a GPU composites in software."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60, help="measured window (default 60)")
    ap.add_argument("--quick", action="store_true", help="15 s window, 3 s warm-up")
    ap.add_argument("--series", type=int, default=10, help="watched processes (default 10)")
    ap.add_argument("--window", type=int, default=300, choices=(60, 300, 900))
    ap.add_argument("--interval", type=float, default=0.1, help="server --interval (0.1 = 10 Hz)")
    ap.add_argument("--warmup", type=float, default=5, help="seconds after all series show")
    ap.add_argument("--slice", type=float, default=10, help="rows of the over-time table (s)")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.slice = 15, 3, 5
    run(args)


if __name__ == "__main__":
    main()
