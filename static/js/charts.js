// The memory chart. Plotly is global (classic script at /assets/plotly.min.js).
//
// Performance model: samples are queued as they arrive and applied at most ~10 times a
// second (less at long windows, see flushInterval) from a requestAnimationFrame loop with
// ONE Plotly.extendTraces call covering every trace; per-trace maxPoints trims each trace to
// the time window. Plotly.react (a full redraw) only happens on structural changes: watch
// added/removed/renamed, metric, window, axis, theme, align mode, resume after pause.
//
// Units on the chart: y in MiB (the axis says so; hover shows humanised bytes), x is local
// wall-clock time, or seconds since a run's start in "align at start" mode.

import { formatBytes, MIB, toPlotTime } from "./format.js";
import { METRICS, state } from "./state.js";

// Redraws happen at most every 100 ms. Each extendTraces makes Plotly re-process every
// point shown, so at long windows (where a line moves less than a pixel in 100 ms) redraw
// about once per pixel of movement instead, up to once a second: same look, a fraction of
// the script time (benchmarks/bench_page.py --seconds 330).
const MIN_FLUSH_MS = 100;
const MAX_FLUSH_MS = 1000;
const ALL_WINDOW_GUESS_S = 900; // "all" has no fixed span; treat it like the longest window

// Colour-blind-friendly-ish palettes; reds and greens are kept for leaky/fixed runs.
const PALETTE = {
  dark: ["#4ea1ff", "#ffb347", "#c792ff", "#36d6e7", "#f5e050", "#ff7eb6", "#a0a8ff", "#e0e0e0", "#ffd0a0", "#7fdbca"],
  light: ["#1f5fbf", "#c25e00", "#7b3fbf", "#00838f", "#8a7300", "#c2185b", "#3949ab", "#424242", "#8d4a00", "#00695c"],
};
const RUN_COLOURS = {
  dark: { leaky: ["#ff5c5c", "#ff8a65", "#f06292"], fixed: ["#4cdc8a", "#aee571", "#26c6a0"] },
  light: { leaky: ["#c62828", "#d84315", "#ad1457"], fixed: ["#1b7f3b", "#558b2f", "#00796b"] },
};

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export class Chart {
  constructor(el) {
    this.el = el;
    this.traces = [];           // what is plotted, in trace order: {key, pid, children, t: [], y: []} (t epoch s, y bytes)
    this.pending = new Map();   // watch key -> samples not yet drawn
    this.dirty = true;          // next frame does a full rebuild
    this.marks = [];            // annotations: {key, t, text, kind}
    this.colours = new Map();   // watch key -> palette index, stable while the watch lives
    this.frozenAt = null;       // newest t when paused; rebuilds while paused stop there
    this.lastFlush = 0;
    this.frameQueued = false;
  }

  // ---- inputs -------------------------------------------------------------

  /** New samples for a watch. `inOrder` false (backfill landed in the middle) forces a rebuild. */
  push(watch, samples, inOrder = true) {
    if (!samples.length) return;
    if (state.settings.paused) return; // buffered in the Watch already; resume rebuilds
    const metric = state.settings.metric;
    const traced = this.traces.some((t) => t.key === watch.key);
    if (!inOrder || (!traced && this.qualifies(watch))) {
      this.invalidate();
      return;
    }
    if (!traced) return;
    let q = this.pending.get(watch.key);
    if (!q) this.pending.set(watch.key, (q = []));
    for (const s of samples) if (s[metric] !== undefined) q.push(s);
    this.schedule();
  }

  /** Something structural changed: rebuild on the next frame. */
  invalidate() {
    this.dirty = true;
    this.schedule();
  }

  /** Add a chart annotation (process exit, run start/stop/cap/crash). */
  mark(key, t, text, kind) {
    if (this.marks.some((m) => m.key === key && m.kind === kind && Math.abs(m.t - t) < 0.5)) return;
    this.marks.push({ key, t, text, kind });
    if (this.marks.length > 200) this.marks.shift();
    this.invalidate();
  }

  unmark(key, kind) {
    const before = this.marks.length;
    this.marks = this.marks.filter((m) => !(m.key === key && m.kind === kind));
    if (this.marks.length !== before) this.invalidate();
  }

  setPaused(paused) {
    this.frozenAt = paused ? state.newestT : null;
    // Resuming draws everything buffered meanwhile in one go.
    if (!paused) this.invalidate();
  }

  // ---- frame loop ---------------------------------------------------------

  schedule() {
    if (this.frameQueued) return;
    this.frameQueued = true;
    requestAnimationFrame((now) => this.frame(now));
  }

  frame(now) {
    this.frameQueued = false;
    if (now - this.lastFlush < this.flushInterval()) { this.schedule(); return; }
    this.lastFlush = now;
    if (this.dirty) this.rebuild();
    else if (!state.settings.paused) this.extend();
  }

  flushInterval() {
    if (this.dirty) return MIN_FLUSH_MS; // structural changes show at once
    const spanMs = (state.settings.window || ALL_WINDOW_GUESS_S) * 1000;
    const plotPx = Math.max(300, this.el.clientWidth - 120); // minus the axis margins
    return Math.min(MAX_FLUSH_MS, Math.max(MIN_FLUSH_MS, spanMs / plotPx));
  }

  // ---- drawing ------------------------------------------------------------

  /** A watch gets a trace if it has (or can get) the metric and fits the align mode. */
  qualifies(w) {
    const s = state.settings;
    if (s.align && !this.startOf(w)) return false;
    if (s.metric === "heap_used") return w.has("heap_used");
    return true;
  }

  /** Run start time for align mode (helpers like redis align to their run). */
  startOf(w) {
    const runId = w.runId || w.extraOf;
    const run = runId ? state.runs.get(runId) : null;
    return run && run.started_at ? run.started_at : null;
  }

  xOf(w, t) {
    return state.settings.align ? t - this.startOf(w) : toPlotTime(t);
  }

  cutoff() {
    const win = state.settings.window;
    const newest = this.frozenAt ?? state.newestT;
    return win ? newest - win : -Infinity;
  }

  colourOf(w) {
    const theme = state.settings.theme;
    const run = w.run;
    if (run && RUN_COLOURS[theme][run.variant]) {
      // Several runs of one variant get shades of the same hue, in run order.
      const same = [...state.watches.values()].filter((o) => o.run && o.run.variant === run.variant);
      const shades = RUN_COLOURS[theme][run.variant];
      return shades[Math.max(0, same.indexOf(w)) % shades.length];
    }
    if (!this.colours.has(w.key)) {
      const used = new Set(this.colours.values());
      let i = 0;
      while (used.has(i)) i++;
      this.colours.set(w.key, i);
    }
    const pal = PALETTE[theme];
    return pal[this.colours.get(w.key) % pal.length];
  }

  forget(key) {
    this.colours.delete(key);
    this.marks = this.marks.filter((m) => m.key !== key);
    this.pending.delete(key);
    this.invalidate();
  }

  rebuild() {
    this.dirty = false;
    this.pending.clear();
    const metric = state.settings.metric;
    const cut = this.cutoff();
    const end = this.frozenAt ?? Infinity;
    const data = [];
    this.traces = [];
    for (const w of state.watches.values()) {
      if (!this.qualifies(w)) continue;
      const t = [], y = [];
      for (const s of w.samples) {
        if (s.t < cut || s.t > end || s[metric] === undefined) continue;
        t.push(s.t); y.push(s[metric]);
      }
      this.traces.push({ key: w.key, pid: w.pid, children: w.children, t, y });
      const colour = this.colourOf(w);
      data.push({
        type: "scatter",
        mode: "lines",
        name: w.label,
        x: t.map((v) => this.xOf(w, v)),
        y: y.map((v) => v / MIB),
        text: y.map(formatBytes),
        line: { color: colour, width: 3, dash: w.exited ? "dot" : "solid" },
        hovertemplate: `%{text}<extra>${escapeHtml(w.label)}</extra>`,
        meta: { key: w.key },
      });
    }
    Plotly.react(this.el, data, this.layout(), { responsive: true, displaylogo: false, displayModeBar: false });
  }

  extend() {
    if (!this.pending.size) return;
    const cut = this.cutoff();
    const indices = [], xs = [], ys = [], texts = [], maxp = [];
    const metric = state.settings.metric;
    this.traces.forEach((tr, i) => {
      const w = state.watches.get(tr.key);
      if (!w) return;
      const add = this.pending.get(tr.key) || [];
      const nx = [], ny = [], nt = [];
      for (const s of add) {
        const v = s[metric];
        tr.t.push(s.t); tr.y.push(v);
        nx.push(this.xOf(w, s.t)); ny.push(v / MIB); nt.push(formatBytes(v));
      }
      let drop = 0;
      while (drop < tr.t.length && tr.t[drop] < cut) drop++;
      if (drop) { tr.t.splice(0, drop); tr.y.splice(0, drop); }
      if (!nx.length && !drop) return;
      indices.push(i); xs.push(nx); ys.push(ny); texts.push(nt); maxp.push(tr.t.length);
    });
    this.pending.clear();
    if (indices.length) {
      Plotly.extendTraces(this.el, { x: xs, y: ys, text: texts }, indices, { x: maxp, y: maxp, text: maxp });
    }
    // Marks that scrolled out of the window would stretch the x axis: drop them from view.
    if (this.visibleMarks !== undefined && this.marks.some((m) => m.t < cut && this.visibleMarks.has(m))) {
      Plotly.relayout(this.el, { annotations: this.annotations() });
    }
  }

  annotations() {
    const s = state.settings;
    const cut = this.cutoff();
    this.visibleMarks = new Set();
    const out = [];
    const placed = []; // x of marks already placed: stack labels that would overlap
    for (const m of this.marks) {
      const w = state.watches.get(m.key);
      if (!w || m.t < cut || !this.traces.some((t) => t.key === m.key)) continue;
      this.visibleMarks.add(m);
      const v = valueNear(w, s.metric, m.t);
      const colour = this.colourOf(w);
      const x = this.xOf(w, m.t);
      const near = placed.filter((p) => Math.abs(p - x) < (s.align ? 2 : 2000)).length;
      placed.push(x);
      const a = {
        x,
        text: m.text,
        showarrow: true,
        arrowhead: 2,
        arrowcolor: colour,
        ax: 80 * near, // side by side when several marks share a moment (e.g. compare starts)
        ay: -36 - 30 * near,
        font: { color: colour, size: 15 },
        bgcolor: cssVar("--bg-elev") || "#000",
        bordercolor: colour,
        borderpad: 3,
      };
      if (v === undefined) { a.yref = "paper"; a.y = 1; }
      else a.y = s.log ? Math.log10(Math.max(v / MIB, 1e-6)) : v / MIB;
      out.push(a);
    }
    return out;
  }

  layout() {
    const s = state.settings;
    const fg = cssVar("--fg") || "#eee";
    const grid = cssVar("--grid") || "#444";
    const metricLabel = (METRICS.find((m) => m.id === s.metric) || METRICS[0]).label;
    return {
      // uirevision: keep user zoom across data updates, reset it when the view changes.
      uirevision: `${s.metric}|${s.window}|${s.log}|${s.align}`,
      paper_bgcolor: cssVar("--bg-elev") || "#111",
      plot_bgcolor: cssVar("--bg-elev") || "#111",
      font: { color: fg, size: 16, family: cssVar("--font") || "sans-serif" },
      // r: room for half of the newest x tick label ("12:34:56"). With less, automargin
      // widens the right margin each time a new tick appears at the edge and shrinks it back
      // over the next frames: every change costs a second full Plotly pass and makes the plot
      // area jitter sideways.
      margin: { l: 80, r: 56, t: 16, b: 56 },
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 17 } },
      hovermode: "closest",
      hoverlabel: { font: { size: 16 } },
      xaxis: {
        type: s.align ? "linear" : "date",
        title: { text: s.align ? "seconds since run start" : "" },
        gridcolor: grid,
        linecolor: grid,
        zeroline: false,
        automargin: true,
        // "allow": Plotly's default ("hide past div") measures every tick label's box once per
        // label on every redraw (O(labels²) forced layouts); the margins keep labels inside.
        ticklabeloverflow: "allow",
        // Wall-clock seconds; sub-second ticks (first seconds of a watch) need milliseconds.
        tickformatstops: s.align ? [] : [
          { dtickrange: [null, 999], value: "%H:%M:%S.%L" },
          { dtickrange: [1000, null], value: "%H:%M:%S" },
        ],
      },
      yaxis: {
        type: s.log ? "log" : "linear",
        title: { text: `${metricLabel} (MiB)` },
        gridcolor: grid,
        linecolor: grid,
        zeroline: false,
        automargin: true,
        ticklabeloverflow: "allow", // as on the x axis
        rangemode: s.log ? "normal" : "tozero",
        tickformat: s.log ? "" : ",~f",
        // Plotly's log ticks label minor ticks with bare digits ("2", "5"): confusing on a
        // projector. Give it 1-2-5 ticks with full numbers; ones outside the range are ignored.
        ...(s.log ? { tickmode: "array", tickvals: LOG_TICKS, ticktext: LOG_TICKS.map(fmtTick) } : {}),
      },
      annotations: this.annotations(),
    };
  }

  /** Read-only view of the plotted data for tests: bytes and epoch seconds. */
  snapshot() {
    return this.traces.map((tr) => {
      const w = state.watches.get(tr.key);
      return {
        pid: tr.pid,
        children: tr.children,
        name: w ? w.label : String(tr.pid),
        metric: state.settings.metric,
        x: tr.t.slice(),
        y: tr.y.slice(),
      };
    });
  }
}

const LOG_TICKS = [];
for (let e = -3; e <= 7; e++) for (const m of [1, 2, 5]) LOG_TICKS.push(Number((m * 10 ** e).toPrecision(3)));

function fmtTick(v) {
  return v < 1 ? String(v) : v.toLocaleString("en-US");
}

function valueNear(w, metric, t) {
  let best, bestD = Infinity;
  for (let i = w.samples.length - 1; i >= 0; i--) {
    const s = w.samples[i];
    if (s[metric] === undefined) continue;
    const d = Math.abs(s.t - t);
    if (d < bestD) { best = s[metric]; bestD = d; }
    if (s.t < t - 5) break;
  }
  return best;
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}
