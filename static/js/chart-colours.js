// Trace colours and line styles. One colour per leak-lab comparison (its leaky and fixed
// run, started together) or lone run; leaky solid, fixed dashed, helpers (redis) dotted —
// the same in the legend, the runs list and the chart. Any other watch keeps one palette
// colour while it lives. Verdict colours (red growing, green stable, ...) are not used here.

import { runById, state } from "./state.js";

// Colour-blind-friendly-ish palettes, without the verdicts' red and green.
const PALETTE = {
  dark: ["#4ea1ff", "#ffb347", "#c792ff", "#36d6e7", "#f5e050", "#ff7eb6", "#a0a8ff", "#e0e0e0", "#ffd0a0", "#7fdbca"],
  light: ["#1f5fbf", "#c25e00", "#7b3fbf", "#00838f", "#8a7300", "#c2185b", "#3949ab", "#424242", "#8d4a00", "#00695c"],
};

/** The key runs share a colour by: a comparison's two runs have one started_at. */
function pairKey(run) {
  return `run:${run.scenario}|${run.runtime}|${run.started_at ?? run.run_id}`;
}

/** Plotly dash of a run's variant ("solid" for leaky and plain watches). */
export function dashOf(run, helper = false) {
  if (helper) return "dot";
  return run && run.variant === "fixed" ? "dash" : "solid";
}

export class Colours {
  constructor() {
    this.slots = new Map(); // colour key -> palette index, stable while it is in use
  }

  slot(key) {
    if (!this.slots.has(key)) {
      const used = new Set(this.slots.values());
      let i = 0;
      while (used.has(i)) i++;
      this.slots.set(key, i);
    }
    const pal = PALETTE[state.settings.theme];
    return pal[this.slots.get(key) % pal.length];
  }

  /** Colour of a watch (a run's watch or helper takes its run's colour). */
  of(w) {
    const run = w.run || (w.extraOf ? runById(w.extraOf) : null);
    return this.slot(run ? pairKey(run) : w.key);
  }

  /** Colour of a run (for the runs list, also when it is not watched here). */
  ofRun(run) {
    return this.slot(pairKey(run));
  }

  forget(key) {
    this.slots.delete(key);
  }
}
