// Chart marks: labelled lines where something happened (process exit; run start, stop,
// cap, crash with its reason in words; a tool action from the server's `mark` event), and
// each run's memory cap as a dashed line. Labels are laid out in rows so that none overlaps
// another (a comparison starts two runs at the same moment).

import { axisY, plotBackground } from "./chart-axes.js";
import { formatBytes } from "./format.js";
import { seriesOf, state } from "./state.js";

const MAX_MARKS = 200;
const ROW_PX = 28;
const MAX_ROWS = 5;
// A cap far above the data would squash the lines flat: it is drawn once a run has used
// this share of it (a leak heading for its cap), always on a log axis.
const CAP_SHOWN_FROM = 1 / 3;

/** Half a label's width in pixels (about). */
function labelHalf(text, fontPx) {
  return (text.length * fontPx * 0.58 + 12) / 2;
}

/** Label rows: each label takes the first row where it does not touch the one before. */
function rowsFor(items, fontPx) {
  const ends = []; // right edge (px) of the last label in each row
  return items.map(({ px, text }) => {
    const half = labelHalf(text, fontPx);
    let row = ends.findIndex((end) => end < px - half);
    if (row < 0) row = ends.length < MAX_ROWS ? ends.length : 0;
    ends[row] = px + half;
    return row;
  });
}

export class Marks {
  constructor() {
    this.list = [];     // {key (null: not tied to a watch), t, text, kind}
    this.shown = null;  // the marks in the last annotations(), null before the first
  }

  /** Add a mark; false when the same one (key, kind, moment) is there already. */
  add(key, t, text, kind) {
    if (this.list.some((m) => m.key === key && m.kind === kind && Math.abs(m.t - t) < 0.5)) return false;
    this.list.push({ key, t, text, kind });
    if (this.list.length > MAX_MARKS) this.list.shift();
    return true;
  }

  /** Remove a watch's marks of one kind, or all of them; true when any went. */
  remove(key, kind = null) {
    const before = this.list.length;
    this.list = this.list.filter((m) => !(m.key === key && (kind === null || m.kind === kind)));
    return this.list.length !== before;
  }

  /** True when a shown mark is now older than `cut`: it would stretch the x axis. */
  scrolledOut(cut) {
    return this.shown !== null && this.list.some((m) => m.t < cut && this.shown.has(m));
  }

  /**
   * Plotly annotations and shapes ({annotations, shapes}) for the marks after `cut`. `view`: {traced: Set of keys,
   * colourOf(w), xOf(w|null, t) (null when it cannot be placed), pxPer (pixels per x unit),
   * rightPx (the newest point's x in pixels), plotHeightPx, unit, fontPx}.
   */
  annotations(cut, view) {
    this.shown = new Set();
    const items = [];
    for (const m of this.list) {
      if (m.t < cut) continue;
      const w = m.key === null ? null : state.watches.get(m.key);
      if (m.key !== null && (!w || !view.traced.has(m.key))) continue;
      const x = view.xOf(w, m.t);
      if (x === null) continue;
      this.shown.add(m);
      items.push({ m, x, px: x * view.pxPer, colour: w ? view.colourOf(w) : "", text: m.text });
    }
    items.sort((a, b) => a.px - b.px);
    const rows = rowsFor(items, view.fontPx);
    const fg = getComputedStyle(document.documentElement).getPropertyValue("--fg").trim() || "#eee";
    // Each mark is a thin line at its moment and a label in rows counted down from the top of
    // the plot (two runs started together get two rows, whatever their values). A label
    // reaching past the newest point would stretch the time axis past now (Plotly's autorange
    // fits annotations): such a label ends at its line instead of centring on it.
    const annotations = items.map((it, i) => {
      const pastNow = it.px + labelHalf(it.text, view.fontPx) > (view.rightPx ?? Infinity);
      return {
        x: it.x,
        yref: "paper",
        y: 1,
        yanchor: "top",
        xanchor: pastNow ? "right" : "center",
        yshift: -ROW_PX * rows[i],
        showarrow: false,
        text: it.text,
        font: { color: it.colour || fg, size: view.fontPx },
        bgcolor: plotBackground(),
        bordercolor: it.colour || fg,
        borderpad: 3,
      };
    });
    const shapes = items.map((it) => ({
      type: "line", x0: it.x, x1: it.x, yref: "paper", y0: 0, y1: 1,
      line: { color: it.colour || fg, width: 1, dash: "dot" },
    }));
    return { annotations, shapes };
  }
}

/**
 * Dashed lines at the memory caps of traced runs, with a label at the right edge:
 * {shapes, annotations}. `view`: {traced, colourOf, unit, fontPx}.
 */
export function capLines(view) {
  const s = state.settings;
  const shapes = [], annotations = [];
  if (!seriesOf(s.metric).includes("rss")) return { shapes, annotations };
  for (const w of state.watches.values()) {
    const run = w.run;
    if (!run || !run.max_rss || !view.traced.has(w.key)) continue;
    if (!s.log && !((w.peak.rss || 0) >= run.max_rss * CAP_SHOWN_FROM)) continue;
    const y = axisY(run.max_rss, view.unit, s.log);
    const colour = view.colourOf(w);
    shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { color: colour, width: 2, dash: "dash" } });
    annotations.push({
      xref: "paper", x: 1, xanchor: "right", yanchor: "bottom", y, showarrow: false,
      text: `cap ${formatBytes(run.max_rss)} (${run.variant})`, font: { color: colour, size: view.fontPx - 2 },
    });
  }
  return { shapes, annotations };
}
