// The page's single source of truth: watches (with their client-side sample buffers),
// view settings and leak-lab runs. Watches and runs change only through the functions
// at the end of this file; the watch functions announce each change on `bus`
// (watch-added, watch-changed, watch-removed, watch-exit, samples), where main.js routes
// it to the views. View settings are plain fields: main.js restores them from the URL,
// controls.js changes them and tells main.js which one changed. The bus also carries
// what is not state: server pushes (system, run-event), resync and connection status.

const bus = new EventTarget();
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
  { id: "rss_heap", label: "RSS + heap" },
];
// A metric is drawn from these sample keys, one trace each (RSS and the language heap
// together show "heap < rss": the memory the runtime does not account for).
const SERIES = { rss_heap: ["rss", "heap_used", "heap_total"] };
export const SERIES_LABELS = { rss: "RSS", heap_used: "heap used", heap_total: "heap total" };
export function seriesOf(metric) { return SERIES[metric] || [metric]; }
export function metricLabel(id) {
  return (METRICS.find((m) => m.id === id) || METRICS[0]).label;
}
export const WINDOWS = [60, 300, 900, 0]; // seconds; 0 = all

export const state = {
  watches: new Map(),        // key -> Watch, insertion order = legend order
  settings: { metric: "rss", window: 300, log: false, theme: "dark", align: false, paused: false, present: false },
  runs: new Map(),           // run_id -> run as last reported by the server
  cleared: new Map(),        // run_id -> run no longer listed; its watches keep their names
  gone: [],                  // pids of a saved link that no longer exist (one quiet line)
  connection: "connecting",  // connecting | connected | disconnected | reconnected | refused
  newestT: 0,                // newest sample time seen from the server (its clock, not ours)
  // Room mode (follow.js): this page's role, rendered by the server on <body> and confirmed
  // by `hello`; an audience page follows the presenter's `view` until the viewer zooms.
  room: {
    role: document.body.dataset.role === "audience" ? "audience" : "presenter",
    shared: document.body.dataset.shared === "1",
    following: document.body.dataset.role === "audience",
    view: null,              // the presenter's last `view`
  },
  zoomEpoch: 0,              // bumped to drop a local zoom (the chart's uirevision)
  replay: null,              // memdash open: the cursor {t, start, end, speed, playing, seek}
};

export const isPresenter = () => state.room.role === "presenter";

export function watchKey(pid, children) { return `${pid}:${children ? 1 : 0}`; }

/** A run listed or cleared, or null. */
export function runById(id) { return state.runs.get(id) || state.cleared.get(id) || null; }

/** "unbounded_cache · node · leaky": the one name of a run, in the legend and the runs list. */
export function runLabel(run) { return `${run.scenario} · ${run.runtime} · ${run.variant}`; }

class Watch {
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
    this.growth = null;      // the server's growth object from the `growth` event
    this.bucket = 0;         // > 0: the backfill came as min/max pairs per bucket of this many s
    this.coarseUntil = -Infinity; // samples up to here are such pairs (full resolution after)
    this.span = null;        // the window (s, 0: all) its history was asked for
    this.own = true;         // asked for by this page (sent to the server, kept in the URL)
    this.memberOf = null;    // key of the tree (a children=true watch) it is drawn as a member of
    this.tree = null;        // a tree's {members: [pid], ranking, rows, root_exited, extra, note}
    this.heap = null;        // GET /api/processes/<pid>'s language-heap part (heap.js)
  }

  get lastT() { return this.samples.length ? this.samples[this.samples.length - 1].t : undefined; }

  get run() { return this.runId ? runById(this.runId) : null; }

  /** Legend label: "scenario · runtime · variant (pid)" for runs, "name (pid)" otherwise. */
  get label() {
    const run = this.run;
    let base;
    if (run) base = runLabel(run);
    else if (this.extraOf && runById(this.extraOf)) {
      base = `${runLabel(runById(this.extraOf))} · ${this.process?.name || "helper"}`;
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
    const older = [];
    for (const s of samples) {
      const last = this.lastT;
      if (last === undefined || s.t > last) {
        this.samples.push(s);
        added.push(s);
      } else older.push(s); // backfill after live ones: merged below, in one pass
      for (const m of METRICS) {
        if (s[m.id] !== undefined && !(s[m.id] <= this.peak[m.id])) this.peak[m.id] = s[m.id];
      }
      if (s.t > state.newestT) state.newestT = s.t;
    }
    const inOrder = !older.length || !this.insert(older, added);
    if (this.samples.length > MAX_SAMPLES) this.samples.splice(0, this.samples.length - MAX_SAMPLES);
    return { added, inOrder };
  }

  /** Merge samples older than the newest into the sorted list, skipping times already held
   *  (a sorted merge: a full-resolution fetch brings thousands at once). True if any landed. */
  insert(older, added) {
    const held = new Set(this.samples.map((s) => s.t));
    const fresh = older.filter((s) => !held.has(s.t) && held.add(s.t)).sort((a, b) => a.t - b.t);
    if (!fresh.length) return false;
    const out = [];
    let i = 0;
    for (const s of fresh) {
      while (i < this.samples.length && this.samples[i].t < s.t) out.push(this.samples[i++]);
      out.push(s);
    }
    while (i < this.samples.length) out.push(this.samples[i++]);
    this.samples = out;
    added.push(...fresh);
    return true;
  }

  /** Replace the min/max pairs from `since` on by the full-resolution `samples`. */
  refine(since, samples) {
    this.samples = this.samples.filter((s) => s.t < since || s.t > this.coarseUntil);
    this.coarseUntil = Math.min(this.coarseUntil, since);
    return this.merge(samples);
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

// ---- changing watches and runs ---------------------------------------------------

/**
 * The watch of (pid, children), created if new (announced as watch-added). An existing
 * watch that a run now claims (e.g. one restored from a shared URL) is tagged with it.
 * Returns {watch, added}.
 */
export function putWatch(pid, children, { runId = null, extraOf = null } = {}) {
  const key = watchKey(pid, children);
  const had = state.watches.get(key);
  if (had) {
    // A tree's member this page now asks for itself: sent to the server, kept in the URL.
    const claimed = !had.own;
    had.own = true;
    if (runId) attachRun(had, runId);
    if (claimed) emit("watch-changed", had);
    return { watch: had, added: claimed };
  }
  const w = new Watch(pid, children);
  w.runId = runId;
  w.extraOf = extraOf;
  state.watches.set(key, w);
  emit("watch-added", w);
  return { watch: w, added: true };
}

/** A member of tree `tree` (a watch of its own, not sent: the tree's watch brings its
 *  samples), created if new. A watch this page asked for itself stays its own. */
export function putMember(tree, pid) {
  const key = watchKey(pid, false);
  let w = state.watches.get(key);
  if (!w) {
    w = new Watch(pid, false);
    w.own = false;
    w.memberOf = tree.key;
    state.watches.set(key, w);
  } else if (!w.own) w.memberOf = tree.key;
  return w;
}

/** Put `key` where `at` is in the watch order (the legend, the side column). */
export function moveWatch(key, at) {
  if (key === at || !state.watches.has(key) || !state.watches.has(at)) return;
  const entries = [...state.watches.entries()].filter(([k]) => k !== key);
  const i = entries.findIndex(([k]) => k === at);
  entries.splice(i, 0, [key, state.watches.get(key)]);
  state.watches.clear();
  for (const [k, v] of entries) state.watches.set(k, v);
}

/** The members drawn for a tree (watches whose memberOf is its key). */
export function membersOf(tree) {
  return [...state.watches.values()].filter((w) => w.memberOf === tree.key);
}

/** Tag a watch as the one plotting run `runId` (legend, colours, align mode follow). */
export function attachRun(w, runId) {
  if (w.runId) return;
  w.runId = runId;
  // A run's processes are in the runs list: its tree is drawn as its total only.
  for (const m of membersOf(w)) if (!m.own) { state.watches.delete(m.key); emit("watch-removed", m); }
  w.tree = null;
  emit("watch-changed", w);
}

/** Forget a watch. False when it was already gone (or replaced) meanwhile. */
export function dropWatch(w) {
  if (state.watches.get(w.key) !== w) return false;
  state.watches.delete(w.key);
  // A tree's members go with it (one this page also watches on its own stays).
  for (const m of membersOf(w)) {
    if (m.own) m.memberOf = null;
    else { state.watches.delete(m.key); emit("watch-removed", m); }
  }
  emit("watch-removed", w);
  return true;
}

/** The server acknowledged a watch: keep its process info, merge the history it sent. */
export function confirmWatch(w, process, samples, bucket = 0) {
  w.process = process || w.process;
  const first = !w.confirmed;
  w.confirmed = true;
  if (bucket > 0 && samples?.length) {
    w.bucket = bucket;
    w.coarseUntil = Math.max(w.coarseUntil, samples[samples.length - 1].t - bucket);
  }
  const merged = w.merge(samples || []);
  // Views redraw from the merged history, so the samples go in before the news goes out.
  if (first) emit("watch-changed", w);
  announce(w, merged);
}

/** Merge live samples into a watch and announce the ones that were new. */
export function addSamples(w, samples) {
  announce(w, w.merge(samples || []));
}

function announce(watch, { added, inOrder }) {
  if (added.length) emit("samples", { watch, added, inOrder });
}

/** A replay's cursor jumped: drop every sample, exit, verdict and run; the watches stay
 *  (re-sent by the caller, their history comes again up to the new cursor). */
export function forgetHistory() {
  for (const w of state.watches.values()) {
    Object.assign(w, { samples: [], peak: {}, exited: null, growth: null, bucket: 0, coarseUntil: -Infinity, span: null, left: false });
  }
  state.runs.clear();
  state.cleared.clear();
  state.newestT = 0;
}

/** The process behind a watch is gone; the watch and its history stay on screen. */
export function markExited(w, t, reason = "exited") {
  if (w.exited) return;
  w.exited = { t, reason };
  emit("watch-exit", w);
}

// `run` events and the POST / GET answers race: a late "starting" must not undo "running".
const RUN_STATE_ORDER = { starting: 0, running: 1, stopped: 2, capped: 2, crashed: 2 };
export const FINISHED = new Set(["stopped", "capped", "crashed"]);

/** Record a run as reported by the server. Returns {prev, run}: the record before and after. */
export function recordRun(run) {
  const cleared = state.cleared.has(run.run_id); // a late event must not bring it back
  const prev = runById(run.run_id);
  const stale = prev && (RUN_STATE_ORDER[run.state] ?? 0) < (RUN_STATE_ORDER[prev.state] ?? 0);
  const merged = stale ? { ...run, ...prev } : { ...(prev || {}), ...run };
  (cleared ? state.cleared : state.runs).set(run.run_id, merged);
  return { prev, run: merged };
}

/** Forget runs (cleared on the server, or hidden here); their watches stay on the chart. */
export function forgetRuns(ids) {
  let any = false;
  for (const id of ids) {
    const run = state.runs.get(id);
    if (!run) continue;
    state.cleared.set(id, run);
    state.runs.delete(id);
    any = true;
  }
  return any;
}
