// The language heap of any watched process (not only the leak lab's): what memdash sees of
// it (GET /api/processes/<pid>: language_heap, heap_source, heap_tools, inspector), said on
// the process's line ("no language heap" when null), and the controls that fit it:
// "Attach inspector" for a node program (POST /inspect; the heap is then drawn beside RSS),
// Detach, and Find the leak / Heap snapshot when the process has those heap_tools (their
// results open in the same panel as the lab's tools). Controls are presenter-only.

import { api } from "./api.js";
import { button, el } from "./dom.js";
import { emit, isPresenter, state } from "./state.js";
import { showError } from "./toast.js";

const MAX_DESCRIBED = 24; // a big tree: its first members only (one GET each)
let described = 0;

const RUNTIME = { node: "Node heap", python: "Python heap" };
const SOURCE = { reporter: "memdash run", inspector: "inspector" };

/** Ask once what memdash sees of the language heap of watch `w` (plain watches and trees'
 *  members; lab runs have their own tools). `force` asks again (after attach/detach). */
export async function describeHeap(w, { force = false } = {}) {
  if (w.runId || w.extraOf || (w.heapAsked && !force)) return;
  if (!force && ++described > MAX_DESCRIBED) return;
  w.heapAsked = true;
  try {
    const r = await api(`/api/processes/${encodeURIComponent(w.pid)}`);
    w.heap = {
      language_heap: r.language_heap ?? null,
      heap_source: r.heap_source ?? null,
      heap_tools: Array.isArray(r.heap_tools) ? r.heap_tools : [],
      inspector: r.inspector || null,
      started_by_memdash: r.started_by_memdash || null,
      name: r.name,
    };
    emit("heap", w);
  } catch {
    w.heapAsked = false; // exited or not shown: nothing to say
  }
}

/** "no language heap" / "Node heap (inspector)" and the inspector note, for a line. */
export function heapNote(w) {
  const h = w.heap;
  if (!h) return null;
  const words = h.language_heap
    ? `${RUNTIME[h.language_heap] || h.language_heap}${h.heap_source ? ` (${SOURCE[h.heap_source] || h.heap_source})` : ""}`
    : "no language heap";
  const insp = h.inspector;
  const note = insp?.attached
    ? ` · inspector open while attached${insp.opened_by_memdash ? " (memdash opened it; it closes it on detach)" : ""}`
    : insp?.ended ? ` · ${insp.ended}` : "";
  return el("span", { class: `heap-note${h.language_heap ? "" : " none"}`, "data-heap": h.language_heap || "none", text: words + note });
}

/**
 * Presenter-only buttons for watch `w`: attach/detach (node), Find the leak / Heap snapshot
 * (heap_tools). `tools`: {leakReport(w, btn), heapSnapshot(w, btn)}; `onAttached(w)`.
 */
export function heapButtons(w, { tools, onAttached }) {
  if (!isPresenter() || !w.heap || w.exited) return [];
  const h = w.heap;
  const out = [];
  const small = (text, action, onclick, title) =>
    button({ class: "small presenter-only live-only", text, "data-heap-action": action, title, onclick });
  const isNode = (h.name || w.process?.name) === "node";
  if (isNode && h.heap_source !== "reporter" && !h.inspector?.attached) {
    out.push(small("Attach inspector", "attach", (e) => inspect(w, e.target, true, onAttached),
      "Open this node program's inspector (SIGUSR1) and read its heap once a second"));
  }
  if (h.inspector?.attached) {
    out.push(small("Detach", "detach", (e) => inspect(w, e.target, false, onAttached),
      "Stop reading its heap; close the inspector if memdash opened it"));
  }
  if (h.heap_tools.includes("leak_report")) out.push(small("Find the leak", "leak", (e) => tools.leakReport(w, e.target), "Where memory allocated over 5 s and still alive was allocated"));
  if (h.heap_tools.includes("heap_snapshot")) out.push(small("Heap snapshot", "snapshot", (e) => tools.heapSnapshot(w, e.target), "A V8 heap snapshot to open in Chrome DevTools"));
  return out;
}

async function inspect(w, btn, attach, onAttached) {
  btn.disabled = true;
  btn.textContent = attach ? "attaching…" : "detaching…";
  try {
    const path = `/api/processes/${encodeURIComponent(w.pid)}/inspect${attach ? "" : "/detach"}`;
    await api(path, { method: "POST" });
    await describeHeap(w, { force: true });
    if (attach) onAttached(w);
  } catch (err) {
    showError(err, attach ? `attach to ${w.pid}` : `detach from ${w.pid}`);
    btn.disabled = false;
  }
  if (state.watches.get(w.key) === w) emit("heap", w);
}
