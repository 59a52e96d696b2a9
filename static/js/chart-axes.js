// The chart's frame: axes, their units and ticks, theme colours, legend.
// y: the unit follows the data (KiB, MiB or GiB; hover shows humanised bytes); x: local
// wall-clock time, or seconds since a run's start in "align at start" mode, ticked on
// whole seconds. An empty chart has no ticks at all (no 00:00:00 over nothing).

import { state, metricLabel } from "./state.js";

/** A CSS custom property of the current theme ("" when unset). */
function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Epoch seconds -> value for a Plotly date axis. Plotly treats numbers as UTC, so shift to local. */
export function toPlotTime(t) {
  const ms = t * 1000;
  return ms - new Date(ms).getTimezoneOffset() * 60000;
}

/** Where `bytes` sits on the y axis as Plotly's annotations and shapes place it. */
export function axisY(bytes, unit, log) {
  const v = bytes / unit.size;
  return log ? Math.log10(Math.max(v, 1e-6)) : v;
}

// Log ticks: 1-2-5 per decade, finer (1-1.5-2-3-5-7) when the data spans less than that;
// the range is widened until at least three labelled ticks are inside it.
const COARSE = [1, 2, 5];
const FINE = [1, 1.5, 2, 3, 5, 7];
function ladder(mantissas) {
  const out = [];
  for (let e = -3; e <= 7; e++) for (const m of mantissas) out.push(Number((m * 10 ** e).toPrecision(3)));
  return out;
}
const LADDERS = [ladder(COARSE), ladder(FINE)];

/** {range (log10), tickvals, ticktext} for data between lo and hi (in the axis unit). */
export function logTicks(lo, hi) {
  lo = Math.max(lo, 1e-3);
  hi = Math.max(hi, lo);
  let ticks = [];
  for (const all of LADDERS) {
    ticks = all.filter((v) => v >= lo && v <= hi);
    if (ticks.length >= 3) break;
  }
  const all = LADDERS[1];
  while (ticks.length < 3) {
    const below = all.filter((v) => v < lo).pop();
    const above = all.find((v) => v > hi);
    if (below !== undefined) lo = below;
    if (above !== undefined) hi = above;
    ticks = all.filter((v) => v >= lo && v <= hi);
    if (below === undefined && above === undefined) break;
  }
  const pad = 0.04 * Math.max(Math.log10(hi) - Math.log10(lo), 0.05);
  return {
    range: [Math.log10(lo) - pad, Math.log10(hi) + pad],
    tickvals: ticks,
    ticktext: ticks.map((v) => (v < 1 ? String(v) : v.toLocaleString("en-US"))),
  };
}

// Time tick steps (seconds): the first that fits the plot's width (a label "12:34:56"
// needs ~120 px at projector sizes; Plotly would tilt crowded labels).
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
const TICK_PX = 120;

/** Seconds between time ticks for `span` seconds over `plotPx` pixels: whole seconds. */
export function timeStep(span, plotPx) {
  const most = Math.max(2, Math.min(8, Math.floor(plotPx / TICK_PX)));
  return STEPS.find((st) => span / st <= most) || STEPS[STEPS.length - 1];
}

/** Both axes share these; "allow": Plotly's default ("hide past div") measures every tick
 *  label's box once per label on every redraw (O(labels²) forced layouts); the margins keep
 *  labels inside. */
function axis(grid, extra) {
  return { gridcolor: grid, linecolor: grid, zeroline: false, automargin: true, ticklabeloverflow: "allow", ...extra };
}

/** The x axis keys that change with the span shown (also used by Plotly.relayout). */
export function xTicks(align, span, plotPx) {
  const step = timeStep(span, plotPx);
  return align
    ? { tickmode: "linear", tick0: 0, dtick: step }
    : { tickmode: "linear", tick0: "2000-01-01 00:00:00", dtick: step * 1000 };
}

function xAxis(s, grid, { empty, span, plotPx }) {
  if (empty) return axis(grid, { showticklabels: false, showgrid: false, title: { text: "" } });
  return axis(grid, {
    type: s.align ? "linear" : "date",
    title: { text: s.align ? "since run start" : "" },
    ...(s.align ? { tickprefix: "+", ticksuffix: " s" } : { tickformat: "%H:%M:%S" }),
    ...xTicks(s.align, span, plotPx),
  });
}

function yAxis(s, grid, { empty, unit, yLo, yHi }) {
  const title = { text: `${metricLabel(s.metric)} (${unit.name})` };
  if (empty) return axis(grid, { showticklabels: false, title, rangemode: "tozero" });
  if (s.log) return axis(grid, { type: "log", title, tickmode: "array", autorange: false, ...logTicks(yLo, yHi) });
  return axis(grid, { type: "linear", title, rangemode: "tozero", tickformat: ",~f" });
}

/** The theme's background for the plot and the annotation labels. */
export function plotBackground() {
  return cssVar("--bg-elev") || "#111";
}

/**
 * Plotly layout for the current view. `frame`: {annotations, shapes, unit, yLo, yHi (data
 * range in the unit, for the log axis), span (seconds shown), plotPx (plot width), empty}.
 */
export function layout(frame) {
  const s = state.settings;
  const grid = cssVar("--grid") || "#444";
  const size = s.present ? 20 : 16;
  return {
    // uirevision: keep user zoom across data updates, reset it when the view changes.
    // (zoomEpoch: following the presenter again drops a viewer's zoom.)
    uirevision: `${s.metric}|${s.window}|${s.log}|${s.align}|${state.zoomEpoch}`,
    paper_bgcolor: plotBackground(),
    plot_bgcolor: plotBackground(),
    font: { color: cssVar("--fg") || "#eee", size, family: cssVar("--font") || "sans-serif" },
    // r: room for half of the newest x tick label ("12:34:56"). With less, automargin
    // widens the right margin each time a new tick appears at the edge and shrinks it back
    // over the next frames: every change costs a second full Plotly pass and makes the plot
    // area jitter sideways.
    margin: { l: 72, r: 56, t: 16, b: 48 },
    showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: size + 1 } },
    hovermode: "closest",
    hoverlabel: { font: { size } },
    xaxis: xAxis(s, grid, frame),
    yaxis: yAxis(s, grid, frame),
    annotations: frame.annotations,
    shapes: frame.shapes,
  };
}
