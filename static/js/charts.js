// The memory chart: one Plotly trace per watch and series of the selected metric (RSS +
// heap draws three per process). Plotly is global (classic script at /assets/plotly.min.js).
//
// Performance model: new samples are queued per watch and applied in ONE
// Plotly.extendTraces call covering every trace, with per-trace maxPoints trimming each
// trace to the time window; when that happens is chart-scheduler.js's business.
// Plotly.react (a full redraw) only happens on structural changes: watch
// added/removed/renamed, metric, window, axis, theme, align mode, resume after pause, and
// when the data outgrows its axis unit (KiB -> MiB) or the log axis' range.

import { layout, timeStep, toPlotTime, xTicks } from "./chart-axes.js";
import { Colours, dashOf } from "./chart-colours.js";
import { capLines, Marks } from "./chart-marks.js";
import { RedrawScheduler } from "./chart-scheduler.js";
import { axisUnit, formatBytes } from "./format.js";
import { runById, SERIES_LABELS, seriesOf, state } from "./state.js";

const PLOT_CONFIG = { responsive: true, displaylogo: false, displayModeBar: false };
// A relayout that sets an axis range is the viewer's zoom, pan or double-click (the chart's
// own relayouts only change ticks, annotations and shapes).
const USER_RANGE = /^[xy]axis\.(range|autorange)/;
const AXIS_MARGINS_PX = 130;
const STYLE = { rss: { width: 3, opacity: 1 }, heap_used: { width: 2.5, opacity: 0.8 }, heap_total: { width: 1.5, opacity: 0.55 } };

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

export class Chart {
  constructor(el) {
    this.el = el;
    this.traces = [];           // plotted, in trace order: {key, pid, children, series, t: [], y: []} (t epoch s, y bytes)
    this.pending = new Map();   // watch key -> samples not yet drawn
    this.marks = new Marks();
    this.colours = new Colours();
    this.frozenAt = null;       // newest t when paused; rebuilds while paused stop there
    this.frame = { unit: axisUnit(0), yLo: 0, yHi: 0, step: 0, empty: true };
    this.onUserZoom = null;     // (range: [lo, hi] epoch s, or null when not a time range) => void
    this.hooked = false;
    this.redraws = new RedrawScheduler(
      (full) => (full ? this.rebuild() : !state.settings.paused && this.extend()),
      () => this.plotPx(),
    );
    // Plotly's `responsive` follows window resizes only; the stage also changes size when
    // the bars wrap, presenter mode toggles or the side column changes (and the time ticks
    // follow the width).
    new ResizeObserver(() => this.el.data && this.invalidate()).observe(this.el);
  }

  // ---- inputs -------------------------------------------------------------

  /** New samples for a watch. `inOrder` false (backfill landed in the middle) forces a rebuild. */
  push(watch, samples, inOrder = true) {
    if (!samples.length) return;
    if (state.settings.paused) return; // buffered in the Watch already; resume rebuilds
    const traced = this.traces.some((t) => t.key === watch.key);
    if (!inOrder || (!traced && this.qualifies(watch))) {
      this.invalidate();
      return;
    }
    if (!traced) return;
    let q = this.pending.get(watch.key);
    if (!q) this.pending.set(watch.key, (q = []));
    q.push(...samples);
    this.redraws.request();
  }

  /** Something structural changed: rebuild on the next frame. */
  invalidate() {
    this.redraws.invalidate();
  }

  /** Add a chart mark; `key` null for one not tied to a watch (a tool action). */
  mark(key, t, text, kind) {
    if (this.marks.add(key, t, text, kind)) this.invalidate();
  }

  /** A replay's cursor jumped: every mark and queued sample goes (they come again). */
  clearMarks() { this.marks.list = []; this.pending.clear(); this.invalidate(); }

  unmark(key, kind) {
    if (this.marks.remove(key, kind)) this.invalidate();
  }

  setPaused(paused) {
    this.frozenAt = paused ? state.newestT : null;
    // Resuming draws everything buffered meanwhile in one go.
    if (!paused) this.invalidate();
  }

  colourOf(w) { this.colours.assign(); return this.colours.of(w); }

  runColour(run) { return this.colours.ofRun(run); }

  forget(key) {
    this.colours.forget(key);
    this.marks.remove(key);
    this.pending.delete(key);
    this.invalidate();
  }

  // ---- what is plotted where ------------------------------------------------

  /** The series of watch `w` drawn for the selected metric ([] when none fits). */
  seriesFor(w) {
    const s = state.settings;
    if (s.align && !this.startOf(w)) return [];
    const want = seriesOf(s.metric);
    if (want.length === 1) return want[0] !== "heap_used" || w.has("heap_used") ? want : [];
    return want.filter((k) => k === "rss" || w.has(k));
  }

  qualifies(w) { return this.seriesFor(w).length > 0; }

  /** Run start time for align mode (helpers like redis align to their run). */
  startOf(w) {
    const run = runById(w.runId || w.extraOf);
    return run && run.started_at ? run.started_at : null;
  }

  /** x of time t for watch w (null: a mark without a watch cannot be aligned). */
  xOf(w, t) {
    if (!state.settings.align) return toPlotTime(t);
    const start = w ? this.startOf(w) : null;
    return start === null ? null : t - start;
  }

  cutoff() {
    const win = state.settings.window;
    const newest = this.frozenAt ?? state.newestT;
    return win ? newest - win : -Infinity;
  }

  /** Seconds shown: the window, or less while the data is younger than it. */
  span() {
    let lo = Infinity, hi = -Infinity;
    for (const tr of this.traces) if (tr.t.length) { lo = Math.min(lo, tr.t[0]); hi = Math.max(hi, tr.t[tr.t.length - 1]); }
    const data = hi > lo ? hi - lo : 1;
    return state.settings.window ? Math.min(state.settings.window, data) : data;
  }

  /** x of the newest point plotted (-Infinity when nothing is). */
  rightX() {
    let right = -Infinity;
    for (const tr of this.traces) {
      if (!tr.t.length) continue;
      const x = this.xOf(state.watches.get(tr.key), tr.t[tr.t.length - 1]);
      if (x !== null && x > right) right = x;
    }
    return right;
  }

  plotPx() { return Math.max(200, this.el.clientWidth - AXIS_MARGINS_PX); }

  decorations() {
    const s = state.settings;
    const fontPx = s.present ? 18 : 15;
    const plotPx = this.plotPx();
    const view = {
      traced: new Set(this.traces.map((t) => t.key)),
      colourOf: (w) => this.colourOf(w),
      xOf: (w, t) => this.xOf(w, t),
      pxPer: plotPx / (this.span() * (s.align ? 1 : 1000)),
      rightPx: Number.isFinite(this.rightX()) ? this.rightX() * (plotPx / (this.span() * (s.align ? 1 : 1000))) : Infinity,
      unit: this.frame.unit,
      fontPx,
    };
    const caps = capLines(view);
    const marks = this.marks.annotations(this.cutoff(), view);
    return { annotations: [...marks.annotations, ...caps.annotations], shapes: [...marks.shapes, ...caps.shapes] };
  }

  // ---- drawing ------------------------------------------------------------

  rebuild() {
    this.pending.clear();
    const cut = this.cutoff();
    const end = this.frozenAt ?? Infinity;
    const two = seriesOf(state.settings.metric).length > 1;
    this.colours.assign();
    this.traces = [];
    for (const w of state.watches.values()) {
      for (const series of this.seriesFor(w)) {
        const t = [], y = [];
        for (const s of w.samples) {
          if (s.t < cut || s.t > end || s[series] === undefined) continue;
          t.push(s.t); y.push(s[series]);
        }
        this.traces.push({ key: w.key, pid: w.pid, children: w.children, series, t, y, name: two ? `${w.label} · ${SERIES_LABELS[series]}` : w.label });
      }
    }
    this.measure();
    const f = this.frame;
    const data = this.traces.map((tr) => {
      const w = state.watches.get(tr.key);
      const st = STYLE[tr.series] || STYLE.rss;
      return {
        type: "scatter",
        mode: "lines",
        name: tr.name,
        x: tr.t.map((v) => this.xOf(w, v)),
        y: tr.y.map((v) => v / f.unit.size),
        text: tr.y.map(formatBytes),
        opacity: w.exited ? st.opacity * 0.6 : st.opacity,
        line: { color: this.colourOf(w), width: st.width, dash: dashOf(w.run, !!w.extraOf) },
        hovertemplate: `%{text}<extra>${escapeHtml(tr.name)}</extra>`,
        meta: { key: w.key, series: tr.series },
      };
    });
    Plotly.react(this.el, data, layout({ ...f, ...this.decorations(), span: this.span(), plotPx: this.plotPx() }), PLOT_CONFIG);
    this.hook();
  }

  /** Tell onUserZoom when the viewer zooms or pans (the element has `.on` once plotted). */
  hook() {
    if (this.hooked || typeof this.el.on !== "function") return;
    this.hooked = true;
    this.el.on("plotly_relayout", (ev) => {
      if (ev && Object.keys(ev).some((k) => USER_RANGE.test(k))) this.onUserZoom?.(this.xRange());
    });
  }

  /** The x range shown, in epoch seconds (null in align mode or when autoscaled). */
  xRange() {
    const x = this.el.layout?.xaxis;
    if (!x || x.autorange || !Array.isArray(x.range) || state.settings.align) return null;
    const epoch = (v) => {
      const ms = typeof v === "number" ? v : Date.parse(`${String(v).replace(" ", "T")}Z`);
      return (ms + new Date(ms).getTimezoneOffset() * 60000) / 1000; // undo toPlotTime
    };
    const r = x.range.map(epoch);
    return r.every(Number.isFinite) ? r : null;
  }

  /** The axis facts of the plotted data: unit, range (log axis), tick step, emptiness. */
  measure() {
    let lo = Infinity, hi = 0, n = 0;
    for (const tr of this.traces) for (const v of tr.y) { n++; if (v < lo) lo = v; if (v > hi) hi = v; }
    const unit = axisUnit(hi);
    this.frame = { unit, yLo: n ? lo / unit.size : 0, yHi: n ? hi / unit.size : 0, step: timeStep(this.span(), this.plotPx()), empty: n === 0 };
  }

  /** True when new values need another axis (unit, or outside the log range). */
  outgrows(values) {
    const f = this.frame;
    if (f.empty) return values.length > 0;
    for (const v of values) {
      if (axisUnit(v).size > f.unit.size) return true;
      if (state.settings.log && (v / f.unit.size < f.yLo || v / f.unit.size > f.yHi)) return true;
    }
    return false;
  }

  extend() {
    if (!this.pending.size) return;
    const cut = this.cutoff();
    const f = this.frame;
    const indices = [], xs = [], ys = [], texts = [], maxp = [], added = [];
    this.traces.forEach((tr, i) => {
      const w = state.watches.get(tr.key);
      if (!w) return;
      const nx = [], ny = [], nt = [];
      for (const s of this.pending.get(tr.key) || []) {
        const v = s[tr.series];
        if (v === undefined) continue;
        tr.t.push(s.t); tr.y.push(v); added.push(v);
        nx.push(this.xOf(w, s.t)); ny.push(v / f.unit.size); nt.push(formatBytes(v));
      }
      let drop = 0;
      while (drop < tr.t.length && tr.t[drop] < cut) drop++;
      if (drop) { tr.t.splice(0, drop); tr.y.splice(0, drop); }
      if (!nx.length && !drop) return;
      indices.push(i); xs.push(nx); ys.push(ny); texts.push(nt); maxp.push(tr.t.length);
    });
    this.pending.clear();
    if (this.outgrows(added)) { this.invalidate(); return; }
    if (indices.length) {
      Plotly.extendTraces(this.el, { x: xs, y: ys, text: texts }, indices, { x: maxp, y: maxp, text: maxp });
    }
    const step = timeStep(this.span(), this.plotPx());
    const update = {};
    if (step !== f.step) {
      f.step = step;
      for (const [k, v] of Object.entries(xTicks(state.settings.align, this.span(), this.plotPx()))) update[`xaxis.${k}`] = v;
    }
    // Marks that scrolled out of the window would stretch the x axis: drop them from view.
    if (this.marks.scrolledOut(cut) || Object.keys(update).length) {
      const d = this.decorations();
      Plotly.relayout(this.el, { ...update, annotations: d.annotations, shapes: d.shapes });
    }
  }

  /** Read-only view of the plotted data for tests: bytes and epoch seconds. */
  snapshot() {
    return this.traces.map((tr) => {
      const w = state.watches.get(tr.key);
      return {
        pid: tr.pid,
        children: tr.children,
        name: tr.name,
        metric: tr.series,
        colour: w ? this.colourOf(w) : null,
        dash: w ? dashOf(w.run, !!w.extraOf) : null,
        x: tr.t.slice(),
        y: tr.y.slice(),
      };
    });
  }
}
