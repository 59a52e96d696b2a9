// The page's single source of truth: watches (with their client-side sample buffers),
// view settings and leak-lab runs. Modules change it through these functions and
// listen on `bus` for what changed; nothing else holds copies.

export const bus = new EventTarget();
export function emit(type, detail) { bus.dispatchEvent(new CustomEvent(type, { detail })); }
export function on(type, fn) { bus.addEventListener(type, (e) => fn(e.detail)); }

// Bound per-watch memory: 1 hour at 10 Hz. "all" means "all that is buffered".
const MAX_SAMPLES = 36000;

export const METRICS = [
  { id: "rss", label: "RSS" },
  { id: "uss", label: "USS" },
  { id: "pss", label: "PSS" },
  { id: "swap", label: "Swap" },
  { id: "anon", label: "Heap + anon" },
  { id: "heap_used", label: "Language heap" },
];
export const WINDOWS = [60, 300, 900, 0]; // seconds; 0 = all

export const state = {
  watches: new Map(),        // key -> Watch, insertion order = legend order
  settings: { metric: "rss", window: 300, log: false, theme: "dark", align: false, paused: false },
  runs: new Map(),           // run_id -> run as last reported by the server
  connection: "connecting",  // connecting | connected | disconnected | reconnected
  newestT: 0,                // newest sample time seen from the server (its clock, not ours)
};

export function watchKey(pid, children) { return `${pid}:${children ? 1 : 0}`; }

export class Watch {
  constructor(pid, children) {
    this.pid = pid;
    this.children = !!children;
    this.key = watchKey(pid, children);
    this.process = null;     // process info from the watch ack
    this.samples = [];       // sorted by t, deduped by t
    this.exited = null;      // {t, reason} once process_exit arrives
    this.runId = null;       // set when this watch plots a leak-lab run
    this.extraOf = null;     // run_id when this is a helper process (e.g. redis) of a run
    this.confirmed = false;  // true after the server acked the watch once
    this.peak = {};          // metric -> max seen, kept even when old samples are dropped
  }

  get lastT() { return this.samples.length ? this.samples[this.samples.length - 1].t : undefined; }

  get run() { return this.runId ? state.runs.get(this.runId) || null : null; }

  /** Legend label: "scenario · variant (pid)" for runs, "name (pid)" otherwise. */
  get label() {
    const run = this.run;
    let base;
    if (run) base = `${run.scenario} · ${run.variant}`;
    else if (this.extraOf && state.runs.get(this.extraOf)) {
      base = `${state.runs.get(this.extraOf).scenario} · ${this.process?.name || "helper"}`;
    } else base = this.process?.name || "pid";
    const kids = this.children && !run ? " +children" : "";
    return `${base}${kids} (${this.pid})${this.exited ? " (exited)" : ""}`;
  }

  /**
   * Merge samples, dropping ones already held (same t). Live pushes and reconnect backfill
   * can overlap, so this must be idempotent. Returns {added, inOrder}: inOrder=false means
   * something landed before the newest point and the chart must rebuild this trace.
   */
  merge(samples) {
    const added = [];
    let inOrder = true;
    for (const s of samples) {
      const last = this.lastT;
      if (last === undefined || s.t > last) {
        this.samples.push(s);
        added.push(s);
      } else if (!this.samples.some((o) => o.t === s.t)) {
        // Rare: an older sample (backfill after live ones). Insert sorted.
        let i = this.samples.length;
        while (i > 0 && this.samples[i - 1].t > s.t) i--;
        this.samples.splice(i, 0, s);
        added.push(s);
        inOrder = false;
      }
      for (const m of METRICS) {
        if (s[m.id] !== undefined && !(s[m.id] <= this.peak[m.id])) this.peak[m.id] = s[m.id];
      }
      if (s.t > state.newestT) state.newestT = s.t;
    }
    if (this.samples.length > MAX_SAMPLES) this.samples.splice(0, this.samples.length - MAX_SAMPLES);
    return { added, inOrder };
  }

  /** Latest value of a metric, scanning back past samples that lack it. */
  latest(metric) {
    for (let i = this.samples.length - 1; i >= 0; i--) {
      if (this.samples[i][metric] !== undefined) return this.samples[i][metric];
    }
    return undefined;
  }

  has(metric) { return this.latest(metric) !== undefined; }
}

/** Runs whose pid a watch covers, so run events can find their trace. */
export function watchForRun(run) {
  for (const w of state.watches.values()) if (w.runId === run.run_id) return w;
  return null;
}
