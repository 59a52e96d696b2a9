// The runs list beside the chart: every leak-lab run the server knows, newest first, with
// its colour and line style (as on the chart), state and reason in words, the server's
// growth verdict, its processes (role + pid) and the actions that fit it: watch, stop, the
// runtime's leak-finding tool and the mappings diff, aimed at one of its processes.
// Rebuilt on structural changes; the verdicts alone refresh twice a second.

import { button, el, emptyNote } from "./dom.js";
import { formatBytes } from "./format.js";
import { FINISHED, isPresenter, runLabel, state, watchKey } from "./state.js";
import { showGrowth } from "./stats.js";

/** The run's freshest server verdict: its watch's `growth` event, else the run record's. */
function runGrowth(run) {
  const w = state.watches.get(watchKey(run.pid, true));
  return (w && !w.exited && w.growth) || run.growth || null;
}

/** A line sample in the run's colour and dash, as in the legend. */
export function swatch(colour, dash) {
  const s = el("span", { class: "swatch", "data-dash": dash, "aria-hidden": "true" });
  s.style.setProperty("--c", colour);
  return s;
}

/**
 * `actions`: {watch(run), stop(run, btn), toolFor(run) -> {label, use(run, btn, pid)} | null,
 * mappings(run, btn, pid), colourOf(run), dashOf(run)}.
 */
export function initRunsTable(container, actions) {
  const aims = new Map(); // run_id -> pid the tools are aimed at ("" = the server's pick)

  function processes(run) {
    const procs = run.processes || [];
    if (procs.length < 2) return null;
    return el("ul", { class: "run-procs", "aria-label": "Processes of this run" },
      ...procs.map((p) => {
        const v = el("span");
        showGrowth(v, p.growth);
        return el("li", { "data-pid": p.pid, "data-role": p.role }, el("span", { class: "role", text: `${p.role} ${p.pid}` }), " ", v);
      }));
  }

  function aimSelect(run) {
    const procs = run.processes || [];
    if (procs.length < 2) return null;
    const select = el("select", { class: "aim live-only", "aria-label": "Process the tools examine", title: "Process the tools examine" },
      el("option", { value: "", text: "auto: growing most" }),
      ...procs.map((p) => el("option", { value: String(p.pid), text: `${p.role} ${p.pid}` })));
    select.value = aims.get(run.run_id) || "";
    select.addEventListener("change", () => aims.set(run.run_id, select.value));
    return select;
  }

  function actionsOf(run) {
    if (!isPresenter()) return null; // the audience follows; it starts, stops and measures nothing
    const box = el("div", { class: "actions presenter-only" });
    const small = (text, onclick, props = {}) => button({ class: "small", text, onclick, ...props });
    const aim = () => Number(aims.get(run.run_id)) || null;
    if (!state.watches.has(watchKey(run.pid, true))) box.append(small("Watch", () => actions.watch(run), { "data-action": "watch" }));
    if (FINISHED.has(run.state)) return box;
    box.append(small("Stop", (e) => actions.stop(run, e.target), { class: "small danger live-only", "data-action": "stop" }));
    const tool = actions.toolFor(run);
    if (tool) box.append(small(tool.label, (e) => tool.use(run, e.target, aim()), { class: "small live-only", "data-action": "tool" }));
    box.append(small("Mappings diff", (e) => actions.mappings(run, e.target, aim()), { class: "small live-only", "data-action": "mappings" }));
    const select = aimSelect(run);
    if (select) box.append(select);
    return box;
  }

  function row(run) {
    const verdict = el("span");
    showGrowth(verdict, runGrowth(run));
    const now = el("span", { class: "run-rss", text: formatBytes(run.rss) });
    const reason = run.reason ? ` – ${run.reason}` : "";
    return el("div", { class: `run-row state-${run.state}`, "data-run-id": run.run_id, "data-state": run.state, "data-variant": run.variant },
      el("div", { class: "run-head" },
        swatch(actions.colourOf(run), actions.dashOf(run)),
        el("span", { class: "run-name", text: runLabel(run) }),
        verdict),
      el("div", { class: "run-sub" },
        el("span", { class: "state-name", text: run.state }),
        el("span", { class: "reason", text: `${reason} · pid ${run.pid} · ` }), now),
      processes(run),
      actionsOf(run));
  }

  function render() {
    const runs = [...state.runs.values()].sort((a, b) => (b.started_at || 0) - (a.started_at || 0));
    const clear = document.getElementById("clear-finished");
    if (clear) clear.disabled = !runs.some((r) => FINISHED.has(r.state));
    if (!runs.length) {
      container.replaceChildren(emptyNote(isPresenter() ? "No runs yet. Start one from a scenario card below, or press c." : "No runs yet."));
      return;
    }
    container.replaceChildren(...runs.map(row));
  }

  /** Refresh only the verdicts and sizes (cheap; called twice a second). */
  function updateVerdicts() {
    for (const r of container.querySelectorAll(".run-row")) {
      const run = state.runs.get(r.dataset.runId);
      if (!run) continue;
      const w = state.watches.get(watchKey(run.pid, true));
      showGrowth(r.querySelector(".run-head .verdict"), runGrowth(run));
      r.querySelector(".run-rss").textContent = formatBytes(w?.latest("rss") ?? run.rss);
    }
  }

  return { render, updateVerdicts };
}
