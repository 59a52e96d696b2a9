// Trace colours and line styles. One colour per leak-lab comparison (its leaky and fixed
// run, started together) or lone run; leaky solid, fixed dashed, helpers (redis) dotted —
// the same in the legend, the runs list and the chart. Any other watch keeps one palette
// colour that is a function of the process: its pid (and whether it is a tree's total) picks
// the palette slot, the next free one on a clash, so the same link gives the same colours.
// Verdict colours (red growing, green stable, ...) are not used here.

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

/** A small string hash (FNV-1a): the palette slot a key prefers. */
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class Colours {
  constructor() {
    this.slots = new Map(); // colour key -> palette index, stable while it is in use
  }

  slot(key) {
    const pal = PALETTE[state.settings.theme];
    if (!this.slots.has(key)) {
      const used = new Set(this.slots.values());
      let i = hash(key) % pal.length;
      for (let n = 0; n < pal.length && used.has(i); n++) i = (i + 1) % pal.length;
      this.slots.set(key, i);
    }
    return pal[this.slots.get(key) % pal.length];
  }

  /** Give every watch its colour in the watch order (the URL's), before anything is drawn:
   *  which one takes the next free slot on a clash is then the same on every load. */
  assign() {
    for (const w of state.watches.values()) this.of(w);
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
