// "Finding the leak": the tools that say where memory goes, shown in the results panel
// beside the chart. tracemalloc diff (Python runs), heap snapshot (Node runs) and the
// smaps diff of any watched process. A run's tool is aimed at one of its processes (`pid`)
// or, without one, at the process the server picks (the one growing most); every result
// names the pid it examined. A result is plain data ({title, hint, tables, download?}), so the
// presenter's page can hand it to the audience in its `view` and theirs draws the same.

import { api } from "./api.js";
import { button, el } from "./dom.js";
import { emit, runLabel } from "./state.js";
import { showError } from "./toast.js";
import { leakResult, mappingsResult, MEASURE_SECONDS, snapshotResult } from "./tool-results.js";

function hint(text) { return el("p", { class: "hint", text }); }

function findingsTable(headers, rows) {
  return el("table", { class: "findings-table" },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", { text: c }))))));
}

/** Disable a button and relabel it while `fn` runs (a 5 s measurement, a snapshot). */
async function withBusy(btn, label, fn) {
  const old = btn ? btn.textContent : "";
  if (btn) { btn.disabled = true; btn.textContent = label; }
  try { await fn(); } finally { if (btn) { btn.disabled = false; btn.textContent = old; } }
}

const MAX_ROWS = 40; // a result travels in the presenter's view (at most 64 KiB)

/** `onChange(result)` hears of every result shown here, and null when the panel closes. */
export function initTools(panel, { onChange = () => {} } = {}) {
  let current = null;

  function close() {
    panel.hidden = true;
    current = null;
    onChange(null);
  }

  /** Show a result (from a tool here, or from the presenter's view); null hides the panel. */
  function render(result) {
    if (!result || typeof result.title !== "string") { panel.hidden = true; current = null; return; }
    current = result;
    panel.hidden = false;
    const parts = [
      el("div", { class: "findings-head" },
        el("h3", { text: result.title }),
        button({ class: "remove", text: "×", title: "Close", onclick: close })),
      result.download ? el("p", {}, el("a", { href: result.download, download: "", class: "download", text: "⬇ Download .heapsnapshot" })) : null,
      result.hint ? hint(result.hint) : null,
      ...(result.tables || []).flatMap((t) => [
        t.title ? el("h4", { text: t.title }) : null,
        t.rows.length ? findingsTable(t.headers, t.rows) : el("p", { text: t.empty || "Nothing changed." }),
      ])];
    panel.replaceChildren(...parts.filter(Boolean)); // (replaceChildren would print a null)
    panel.scrollTop = 0;
    panel.scrollIntoView({ block: "nearest" });
  }

  function show(result) {
    for (const t of result.tables || []) t.rows = t.rows.slice(0, MAX_ROWS);
    render(result);
    onChange(result);
  }

  /** Run a tool behind a busy button; its failure becomes a toast named `what`. */
  function measure(btn, label, what, fn) {
    return withBusy(btn, label, async () => {
      try { await fn(); } catch (err) { showError(err, what); }
    });
  }

  /** The pid a result examined: the server says; an older server examined the run's main pid. */
  const examined = (r, run, pid) => r.pid ?? pid ?? run.pid;
  const withPid = (body, pid) => (pid ? { ...body, pid } : body);

  function leakReport(run, btn, pid = null) {
    return measure(btn, `measuring ${MEASURE_SECONDS} s…`, "find the leak", async () => {
      const r = await api(`/api/runs/${encodeURIComponent(run.run_id)}/leak-report`, { method: "POST", body: withPid({ seconds: MEASURE_SECONDS }, pid) });
      show(leakResult(r, `${runLabel(run)} (pid ${examined(r, run, pid)})`));
    });
  }

  function heapSnapshot(run, btn, pid = null) {
    return measure(btn, "snapshotting…", "heap snapshot", async () => {
      const r = await api(`/api/runs/${encodeURIComponent(run.run_id)}/heap-snapshot`, { method: "POST", body: withPid({}, pid) });
      show(snapshotResult(r, `${runLabel(run)} (pid ${examined(r, run, pid)})`, r.url));
      emit("artefacts-changed");
    });
  }

  /** Mappings diff of a watched process: `w` is a watch or {pid, label}. */
  function mappings(w, btn) {
    return measure(btn, `measuring ${MEASURE_SECONDS} s…`, "mappings diff", async () => {
      const r = await api(`/api/processes/${encodeURIComponent(w.pid)}/mappings?seconds=${MEASURE_SECONDS}`);
      show(mappingsResult(r, w.label));
    });
  }

  /** Find the leak on any process with a language heap memdash sees (memdash run, --inspect). */
  function processLeakReport(w, btn) {
    return measure(btn, `measuring ${MEASURE_SECONDS} s…`, "find the leak", async () => {
      const r = await api(`/api/processes/${encodeURIComponent(w.pid)}/leak-report`, { method: "POST", body: { seconds: MEASURE_SECONDS } });
      show(leakResult(r, w.label));
    });
  }

  /** A heap snapshot of any Node process memdash sees into; kept with the session. */
  function processHeapSnapshot(w, btn) {
    return measure(btn, "snapshotting…", "heap snapshot", async () => {
      const r = await api(`/api/processes/${encodeURIComponent(w.pid)}/heap-snapshot`, { method: "POST" });
      show(snapshotResult(r, w.label, r.url, true));
      emit("artefacts-changed");
    });
  }

  // The language-level tool each runtime offers on a live run.
  const RUN_TOOLS = {
    python: { label: "Find the leak", use: leakReport },
    node: { label: "Heap snapshot", use: heapSnapshot },
  };

  /** Mappings diff of a run's process: `pid`, else the one the server sees growing most. */
  function runMappings(run, btn, pid = null) {
    const procs = run.processes || [];
    const rate = (p) => p.growth?.bytes_per_min ?? -Infinity;
    const pick = pid ?? (procs.length ? procs.reduce((a, b) => (rate(b) > rate(a) ? b : a)).pid : run.pid);
    const role = procs.find((p) => p.pid === pick)?.role;
    return mappings({ pid: pick, label: `${runLabel(run)}${role ? ` · ${role}` : ""} (pid ${pick})` }, btn);
  }

  return {
    /** {label, use(run, btn, pid)} for a run's runtime, or null. */
    forRun: (run) => RUN_TOOLS[run.runtime] || null,
    mappings,
    runMappings,
    leakReport: processLeakReport,
    heapSnapshot: processHeapSnapshot,
    /** The result on screen (null when none), and showing one from the presenter. */
    current: () => current,
    render,
  };
}
