// Leak-lab runs as this page knows them: starting one run or a leaky/fixed comparison,
// stopping, reloading the list after a reconnect, and the chart marks for a run's start
// and end.
//
// Runs this viewer starts are watched with children=true (so forked workers are summed)
// plus each extra pid (e.g. a private redis-server). Runs started elsewhere are listed and
// can be watched with one click.

import { api } from "./api.js";
import { formatBytes } from "./format.js";
import { attachRun, FINISHED, forgetRuns, recordRun, state, watchKey } from "./state.js";
import { showError, showInfo } from "./toast.js";

// An end mark says why, in words: the server's reason ("JavaScript heap out of memory",
// "memory cap 512 MiB", "stopped by a viewer"), not an exit code.
const END_MARKS = {
  stopped: (run) => `■ ${run.variant}: ${run.reason || "stopped"}`,
  capped: (run) => `▲ ${run.variant}: ${run.reason || (run.max_rss ? `memory cap ${formatBytes(run.max_rss)}` : "memory cap")}`,
  crashed: (run) => `✖ ${run.variant}: ${run.reason || "crashed"}`,
};

/** Annotate the chart when a run starts or its state changes. */
function markRun(chart, prev, run) {
  const key = watchKey(run.pid, true);
  if (run.started_at && !prev?.started_at) chart.mark(key, run.started_at, `▶ ${run.variant} start`, "start");
  if (prev && prev.state === run.state) return;
  if (FINISHED.has(run.state)) chart.unmark(key, "exit"); // the run's own mark says more
  const end = END_MARKS[run.state];
  if (end) chart.mark(key, run.ended_at ?? state.watches.get(key)?.lastT ?? Date.now() / 1000, end(run), run.state);
}

/** The first screen (bars, chart, runs) in view: a Compare clicked far down the page shows there. */
function showStage() {
  window.scrollTo({ top: 0 });
}

/**
 * `addWatch` is connection.addWatch; `onChange` runs after any run record changed.
 * Returns the actions the catalogue, the runs table and main.js use.
 */
export function initRuns({ addWatch, chart, onChange }) {
  /** Record a run (from POST, GET /api/runs or a `run` event) and annotate the chart. */
  function upsert(run, { own = false } = {}) {
    const { prev, run: merged } = recordRun(run);
    if (own) {
      addWatch(run.pid, true, { runId: run.run_id });
      for (const extra of run.extra_pids || []) addWatch(extra, false, { extraOf: run.run_id });
    }
    // A watch restored from the URL (?cpid=) is recognised as this run.
    const w = state.watches.get(watchKey(run.pid, true));
    if (w) attachRun(w, run.run_id);
    markRun(chart, prev, merged);
    onChange();
  }

  async function load() {
    try {
      const data = await api("/api/runs");
      for (const run of data.runs || []) upsert(run);
    } catch (err) {
      showError(err, "runs");
    }
  }

  /** Start runs of a scenario: `variant` is "leaky" or "fixed", or null to compare both. */
  async function launch(sc, { variant = null, runtime, params }) {
    const id = encodeURIComponent(sc.id);
    const [path, body] = variant
      ? [`/api/scenarios/${id}/start`, { variant, runtime, params }]
      : [`/api/scenarios/${id}/compare`, { runtime, params }];
    try {
      const r = await api(path, { method: "POST", body });
      for (const run of variant ? [r] : r.runs || []) upsert(run, { own: true });
      showStage();
    } catch (err) {
      showError(err, `${sc.title} (${variant || "compare"})`);
    }
  }

  async function stop(run, btn) {
    if (btn) btn.disabled = true;
    try {
      const r = await api(`/api/runs/${encodeURIComponent(run.run_id)}/stop`, { method: "POST" });
      if (r && r.run_id) upsert(r);
    } catch (err) {
      showError(err, `stop ${run.scenario}`);
      if (btn) btn.disabled = false;
    }
  }

  async function stopAll(btn) {
    btn.disabled = true;
    try {
      const r = await api("/api/runs/stop-all", { method: "POST" });
      for (const run of r.stopped || []) upsert(run);
      // The `run` events carry the final states too; refresh in case this viewer missed some.
      await load();
      showInfo("All runs stopped");
    } catch (err) {
      showError(err, "stop all");
    } finally {
      btn.disabled = false;
    }
  }

  /** Finished runs leave the list (the server forgets them; an older server: this page only). */
  async function clearFinished(btn) {
    if (btn) btn.disabled = true;
    try {
      const r = await api("/api/runs/clear-finished", { method: "POST" });
      cleared(r.cleared || []);
    } catch (err) {
      if (err.status === 404 || err.status === 405) {
        cleared([...state.runs.values()].filter((run) => FINISHED.has(run.state)).map((run) => run.run_id));
      } else showError(err, "clear finished runs");
    } finally {
      if (btn) btn.disabled = false;
      onChange();
    }
  }

  /** Runs cleared here or by another viewer (`runs_cleared`). */
  function cleared(ids) {
    if (forgetRuns(ids)) onChange();
  }

  /** A `mark` event: a tool action (or a run's end) at t, labelled by the server. */
  function mark(m) {
    const run = m.run_id ? state.runs.get(m.run_id) : null;
    let key = null;
    if (m.pid && state.watches.has(watchKey(m.pid, false))) key = watchKey(m.pid, false);
    if (run && state.watches.has(watchKey(run.pid, true))) key = watchKey(run.pid, true);
    if (m.kind !== "tool" && run) return; // a run's end has its own mark, with the same reason
    const pid = m.pid ? ` (${m.pid})` : "";
    chart.mark(key, m.t, `◆ ${m.label || m.kind}${pid}`, `mark-${m.kind}`);
  }

  return { upsert, load, launch, stop, stopAll, clearFinished, cleared, mark };
}
