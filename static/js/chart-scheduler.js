// When the chart redraws. Samples are queued as they arrive and applied at most ~10 times
// a second from a requestAnimationFrame loop; a full redraw waits for the next frame too,
// so a burst of structural changes costs one Plotly.react.
//
// Each Plotly.extendTraces makes Plotly re-process every point shown, so at long windows
// (where a line moves less than a pixel in 100 ms) redraw about once per pixel of movement
// instead, up to once a second: same look, a fraction of the script time
// (benchmarks/bench_page.py --seconds 330).

import { state } from "./state.js";

const MIN_FLUSH_MS = 100;
const MAX_FLUSH_MS = 1000;
const ALL_WINDOW_GUESS_S = 900; // "all" has no fixed span; treat it like the longest window

export class RedrawScheduler {
  /**
   * `draw(full)` does the drawing: full=true after invalidate(), else only new points.
   * `plotPx()` is the plot area's width now (the chart's, without its axes: charts.js).
   */
  constructor(draw, plotPx) {
    this.draw = draw;
    this.plotPx = plotPx;
    this.full = true;   // the next frame redraws everything
    this.queued = false;
    this.lastFlush = 0;
  }

  /** New points are waiting: draw them on a coming frame. */
  request() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame((now) => this.frame(now));
  }

  /** Something structural changed: redraw everything on the next frame. */
  invalidate() {
    this.full = true;
    this.request();
  }

  frame(now) {
    this.queued = false;
    if (now - this.lastFlush < this.interval()) { this.request(); return; }
    this.lastFlush = now;
    const full = this.full;
    this.full = false;
    this.draw(full);
  }

  interval() {
    if (this.full) return MIN_FLUSH_MS; // structural changes show at once
    const spanMs = (state.settings.window || ALL_WINDOW_GUESS_S) * 1000;
    return Math.min(MAX_FLUSH_MS, Math.max(MIN_FLUSH_MS, spanMs / this.plotPx()));
  }
}
