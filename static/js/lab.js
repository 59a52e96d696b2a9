// Leak lab: scenario cards (explanation, runtime, params, leaky/fixed code side by side),
// starting runs and comparisons, the runs list with verdicts and stop buttons, and the
// "finding the leak" tools (tracemalloc diff, smaps diff, Node heap snapshot).
//
// Runs this viewer starts are watched with children=true (so forked workers are summed)
// plus each extra pid (e.g. a private redis-server). Runs started elsewhere are listed and
// can be watched with one click.

import { api } from "./api.js";
import { formatBytes, formatClock, formatRate, mibPerMin, recentSlope } from "./format.js";
import { state, watchKey } from "./state.js";
import { growthClass, GROWTH_ALERT_MIB_PER_MIN, WARMUP_SECONDS } from "./stats.js";
import { showError, showInfo } from "./toast.js";

const VERDICT_SECONDS = 30;
export const FINISHED = new Set(["stopped", "capped", "crashed"]);
const STATE_ORDER = { starting: 0, running: 1, stopped: 2, capped: 2, crashed: 2 };
const RUNTIME_LABELS = { python: "Python", node: "Node.js" };

function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

/** Server lists may come bare or wrapped ({"scenarios": [...]}, {"runs": [...]}). */
function listOf(data, key) {
  if (Array.isArray(data)) return data;
  return (data && data[key]) || [];
}

export function initLab({ addWatch, chart, onRunsChanged }) {
  const cardsEl = document.getElementById("scenarios");
  const runsEl = document.getElementById("runs");
  const findingsEl = document.getElementById("findings");

  // ---- runs -----------------------------------------------------------------

  /** Record a run (from POST, GET /api/runs or a `run` event) and annotate the chart. */
  function upsertRun(run, { own = false } = {}) {
    const prev = state.runs.get(run.run_id);
    // `run` events and the POST / GET answers race: a late "starting" must not undo "running".
    const stale = prev && (STATE_ORDER[run.state] ?? 0) < (STATE_ORDER[prev.state] ?? 0);
    const merged = stale ? { ...run, ...prev } : { ...(prev || {}), ...run };
    state.runs.set(run.run_id, merged);
    const key = watchKey(run.pid, true);
    if (own) {
      addWatch(run.pid, true, { runId: run.run_id });
      for (const extra of run.extra_pids || []) addWatch(extra, false, { extraOf: run.run_id });
    }
    // A watch restored from the URL (?cpid=) is recognised as this run.
    const w = state.watches.get(key);
    if (w && !w.runId) w.runId = run.run_id;
    if (merged.started_at && (!prev || !prev.started_at)) {
      chart.mark(key, merged.started_at, `▶ ${merged.variant} start`, "start");
    }
    if (!prev || prev.state !== merged.state) {
      if (FINISHED.has(merged.state)) chart.unmark(key, "exit"); // the run's own mark says more
      const now = Date.now() / 1000;
      const t = state.watches.get(key)?.lastT ?? now;
      if (merged.state === "stopped") chart.mark(key, t, `■ ${merged.variant} stopped`, "stop");
      if (merged.state === "capped") chart.mark(key, t, `▲ ${merged.variant} capped`, "cap");
      if (merged.state === "crashed") {
        const code = merged.exit_code !== undefined && merged.exit_code !== null ? ` (exit ${merged.exit_code})` : "";
        chart.mark(key, t, `✖ ${merged.variant} crashed${code}`, "crash");
      }
    }
    renderRuns();
    onRunsChanged();
  }

  async function loadRuns() {
    try {
      const data = await api("/api/runs");
      for (const run of listOf(data, "runs")) upsertRun(run);
    } catch (err) {
      showError(err, "runs");
    }
  }

  async function stopRun(run, btn) {
    if (btn) btn.disabled = true;
    try {
      const r = await api(`/api/runs/${encodeURIComponent(run.run_id)}/stop`, { method: "POST", body: {} });
      if (r && r.run_id) upsertRun(r);
    } catch (err) {
      showError(err, `stop ${run.scenario}`);
      if (btn) btn.disabled = false;
    }
  }

  async function stopAll() {
    const btn = document.getElementById("stop-all");
    btn.disabled = true;
    try {
      const r = await api("/api/runs/stop-all", { method: "POST", body: {} });
      for (const run of [...listOf(r, "runs"), ...listOf(r, "stopped")]) if (run && run.run_id) upsertRun(run);
      // The `run` events carry the final states too; refresh in case this viewer missed some.
      await loadRuns();
      showInfo("All runs stopped");
    } catch (err) {
      showError(err, "stop all");
    } finally {
      btn.disabled = false;
    }
  }
  document.getElementById("stop-all").addEventListener("click", stopAll);

  function verdict(run) {
    const w = state.watches.get(watchKey(run.pid, true));
    if (!w) return { text: "not watched", cls: "rate-none" };
    // Skip the start-up ramp (imports, first allocations): it would make every run look leaky.
    const minT = run.started_at ? run.started_at + WARMUP_SECONDS : -Infinity;
    const slope = recentSlope(w.samples, "rss", VERDICT_SECONDS, undefined, minT);
    if (slope === null) return { text: "measuring…", cls: "rate-none" };
    const cls = growthClass(slope);
    if (mibPerMin(slope) > GROWTH_ALERT_MIB_PER_MIN) return { text: `growing ${formatRate(slope).replace("+", "")}`, cls };
    return { text: "stable", cls };
  }

  function renderRuns() {
    const runs = [...state.runs.values()].sort((a, b) => (b.started_at || 0) - (a.started_at || 0));
    runsEl.replaceChildren();
    if (!runs.length) {
      runsEl.append(el("p", { class: "empty", text: "No runs yet. Start one from a scenario card." }));
      return;
    }
    const table = el("table", { class: "runs-table" });
    table.append(el("thead", {}, el("tr", {},
      ...["Run", "Runtime", "PID", "Started", "State", "Verdict (30 s)", ""].map((h) => el("th", { text: h })))));
    const body = el("tbody");
    for (const run of runs) {
      const watched = state.watches.has(watchKey(run.pid, true));
      const finished = FINISHED.has(run.state);
      const v = verdict(run);
      const actions = el("td", { class: "actions" });
      if (!watched) {
        actions.append(el("button", {
          type: "button", class: "small", text: "Watch",
          onclick: () => addWatch(run.pid, true, { runId: run.run_id }),
        }));
      }
      if (!finished) {
        actions.append(el("button", {
          type: "button", class: "small danger", text: "Stop", "data-action": "stop",
          onclick: (e) => stopRun(run, e.target),
        }));
        if (run.runtime === "python") {
          actions.append(el("button", {
            type: "button", class: "small", text: "Find the leak",
            onclick: (e) => leakReport(run, e.target),
          }));
        }
        if (run.runtime === "node") {
          actions.append(el("button", {
            type: "button", class: "small", text: "Heap snapshot",
            onclick: (e) => heapSnapshot(run, e.target),
          }));
        }
      }
      const tr = el("tr", { "data-run-id": run.run_id, "data-state": run.state, class: `run-${run.variant}` },
        el("td", {}, el("span", { class: `variant-dot ${run.variant}` }), `${run.scenario} · ${run.variant}`),
        el("td", { text: RUNTIME_LABELS[run.runtime] || run.runtime }),
        el("td", { text: String(run.pid) }),
        el("td", { text: run.started_at ? formatClock(run.started_at) : "–" }),
        el("td", { class: `state state-${run.state}` },
          el("span", { class: "state-name", text: run.state }),
          run.reason ? el("span", { class: "reason", text: ` – ${run.reason}` }) : null),
        el("td", { class: `verdict ${v.cls}`, text: v.text }),
        actions);
      body.append(tr);
    }
    table.append(body);
    runsEl.append(table);
  }

  /** Refresh only the verdict cells (cheap; called twice a second). */
  function updateVerdicts() {
    for (const tr of runsEl.querySelectorAll("tr[data-run-id]")) {
      const run = state.runs.get(tr.dataset.runId);
      const cell = tr.querySelector(".verdict");
      if (!run || !cell) continue;
      const v = verdict(run);
      cell.textContent = v.text;
      cell.className = `verdict ${v.cls}`;
    }
  }

  // ---- starting runs -----------------------------------------------------------

  async function start(sc, card, variant) {
    const body = { variant, runtime: card.runtime(), params: card.params() };
    if (!body.params) return;
    card.busy(true);
    try {
      const run = await api(`/api/scenarios/${encodeURIComponent(sc.id)}/start`, { method: "POST", body });
      upsertRun(run, { own: true });
    } catch (err) {
      showError(err, `${sc.title} (${variant})`);
    } finally {
      card.busy(false);
    }
  }

  async function compare(sc, card) {
    const body = { runtime: card.runtime(), params: card.params() };
    if (!body.params) return;
    card.busy(true);
    try {
      const r = await api(`/api/scenarios/${encodeURIComponent(sc.id)}/compare`, { method: "POST", body });
      for (const run of r.runs || []) upsertRun(run, { own: true });
    } catch (err) {
      showError(err, `${sc.title} (compare)`);
    } finally {
      card.busy(false);
    }
  }

  // ---- finding the leak ---------------------------------------------------------

  function showFindings(title, ...content) {
    findingsEl.hidden = false;
    findingsEl.replaceChildren(
      el("div", { class: "findings-head" },
        el("h3", { text: title }),
        el("button", { type: "button", class: "remove", text: "×", title: "Close", onclick: () => { findingsEl.hidden = true; } })),
      ...content);
    findingsEl.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  function table(headers, rows) {
    return el("table", { class: "findings-table" },
      el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", { text: c }))))));
  }

  async function withBusy(btn, label, fn) {
    const old = btn ? btn.textContent : "";
    if (btn) { btn.disabled = true; btn.textContent = label; }
    try { await fn(); } finally { if (btn) { btn.disabled = false; btn.textContent = old; } }
  }

  function signed(n) { return (n > 0 ? "+" : "") + formatBytes(n); }

  function leakReport(run, btn) {
    return withBusy(btn, "measuring 5 s…", async () => {
      try {
        const r = await api(`/api/runs/${encodeURIComponent(run.run_id)}/leak-report`, { method: "POST", body: { seconds: 5 } });
        const rows = (r.top || []).map((x) => [`${x.file}:${x.line}`, signed(x.size_diff), `${x.count_diff > 0 ? "+" : ""}${x.count_diff}`, formatBytes(x.size), String(x.count)]);
        showFindings(`Where ${run.scenario} · ${run.variant} (${run.pid}) allocates – tracemalloc, 5 s diff`,
          el("p", { class: "hint", text: "Lines that allocated the most new memory over 5 seconds. The top line is usually the leak." }),
          rows.length ? table(["Source line", "Size diff", "Count diff", "Size", "Count"], rows) : el("p", { text: "No allocations grew." }));
      } catch (err) { showError(err, "find the leak"); }
    });
  }

  function heapSnapshot(run, btn) {
    return withBusy(btn, "snapshotting…", async () => {
      try {
        const r = await api(`/api/runs/${encodeURIComponent(run.run_id)}/heap-snapshot`, { method: "POST", body: {} });
        showFindings(`Heap snapshot of ${run.scenario} · ${run.variant} (${run.pid})`,
          el("p", {}, el("a", { href: r.url, download: "", class: "download", text: "⬇ Download .heapsnapshot" })),
          el("p", { class: "hint", text: "Open it in Chrome DevTools → Memory → Load, then sort by Retained Size." }));
      } catch (err) { showError(err, "heap snapshot"); }
    });
  }

  /** Mappings diff for any watched pid (called from the stats strip too). */
  function mappings(w, btn) {
    return withBusy(btn, "measuring 5 s…", async () => {
      try {
        const r = await api(`/api/processes/${encodeURIComponent(w.pid)}/mappings?seconds=5`);
        const groups = (r.groups || []).map((g) => [g.kind, formatBytes(g.rss_before), formatBytes(g.rss_after), signed(g.diff)]);
        const top = (r.top || []).filter((m) => m.diff).map((m) => [m.name || "(anonymous)", m.kind, signed(m.diff), formatBytes(m.rss_after)]);
        showFindings(`Mappings diff of ${w.label} – smaps, 5 s`,
          el("p", { class: "hint", text: "Resident memory by mapping kind before and after 5 seconds. Growth in heap/anonymous is allocator memory; file growth is usually harmless page cache." }),
          table(["Kind", "RSS before", "RSS after", "Diff"], groups),
          top.length ? el("h4", { text: "Mappings that grew most" }) : null,
          top.length ? table(["Mapping", "Kind", "Diff", "RSS after"], top) : null);
      } catch (err) { showError(err, "mappings diff"); }
    });
  }

  // ---- scenario cards -----------------------------------------------------------

  function renderCard(sc) {
    const runtimes = sc.runtimes || [];
    const firstOk = runtimes.find((r) => r.available) || runtimes[0];
    const select = el("select", { class: "runtime", "aria-label": "Runtime" },
      ...runtimes.map((r) => el("option", {
        value: r.id, disabled: !r.available,
        text: `${RUNTIME_LABELS[r.id] || r.id}${r.available ? "" : " (unavailable)"}`,
      })));
    if (firstOk) select.value = firstOk.id;
    const reasons = el("ul", { class: "runtime-reasons" },
      ...runtimes.filter((r) => !r.available).map((r) => el("li", { text: `${RUNTIME_LABELS[r.id] || r.id}: ${r.reason || "not available"}` })));

    const inputs = [];
    const params = el("div", { class: "params" });
    for (const p of sc.params || []) {
      if (p.hidden) continue; // internal knobs: the server applies their defaults
      const id = `p-${sc.id}-${p.name}`;
      let input;
      if (p.type === "bool") {
        input = el("input", { type: "checkbox", id, checked: !!p.default });
      } else if (p.type === "int" || p.type === "float" || p.type === "number") {
        input = el("input", { type: "number", id, value: p.default ?? "", step: p.type === "int" ? "1" : "any" });
        if (p.min !== undefined && p.min !== null) input.min = p.min;
        if (p.max !== undefined && p.max !== null) input.max = p.max;
      } else {
        input = el("input", { type: "text", id, value: p.default ?? "" });
      }
      input.dataset.name = p.name;
      input.dataset.type = p.type;
      inputs.push(input);
      const range = p.min !== undefined && p.max !== undefined && p.min !== null ? ` (${p.min}–${p.max})` : "";
      params.append(el("label", { htmlFor: id, class: "param", title: p.help || "" },
        el("span", { class: "param-name", text: p.name.replace(/_/g, " ") }),
        input,
        el("span", { class: "param-unit", text: `${p.unit || ""}${range}` }),
        p.help ? el("span", { class: "param-help", text: p.help }) : null));
    }

    const leakyCode = el("code");
    const fixedCode = el("code");
    const codePath = el("span", { class: "code-path" });
    function showCode() {
      const c = (sc.code || {})[select.value] || {};
      leakyCode.textContent = c.leaky || "(no code for this runtime)";
      fixedCode.textContent = c.fixed || "(no code for this runtime)";
      codePath.textContent = c.path || "";
    }
    select.addEventListener("change", showCode);
    showCode();

    const card = {
      runtime: () => select.value,
      params() {
        const out = {};
        for (const i of inputs) {
          if (!i.checkValidity()) { i.reportValidity(); return null; }
          const t = i.dataset.type;
          if (t === "bool") out[i.dataset.name] = i.checked;
          else if (t === "int") out[i.dataset.name] = parseInt(i.value, 10);
          else if (t === "float" || t === "number") out[i.dataset.name] = parseFloat(i.value);
          else out[i.dataset.name] = i.value;
        }
        return out;
      },
      busy(on) { for (const b of buttons.querySelectorAll("button")) b.disabled = on || noRuntime; },
    };
    const noRuntime = !runtimes.some((r) => r.available);
    const buttons = el("div", { class: "run-buttons" },
      el("button", { type: "button", class: "leaky", text: "Run leaky", "data-action": "run-leaky", onclick: () => start(sc, card, "leaky") }),
      el("button", { type: "button", class: "fixed", text: "Run fixed", "data-action": "run-fixed", onclick: () => start(sc, card, "fixed") }),
      el("button", { type: "button", class: "primary", text: "Compare", "data-action": "compare", onclick: () => compare(sc, card) }));
    card.busy(false);

    return el("article", { class: "scenario", "data-scenario": sc.id },
      el("h3", { text: sc.title }),
      sc.summary ? el("p", { class: "summary", text: sc.summary }) : null,
      el("dl", { class: "explain" },
        el("dt", { text: "What leaks" }), el("dd", { text: sc.leaks || "" }),
        el("dt", { text: "Why" }), el("dd", { text: sc.why || "" }),
        el("dt", { text: "The fix" }), el("dd", { text: sc.fix || "" })),
      el("div", { class: "scenario-controls" },
        el("label", { class: "param" }, el("span", { class: "param-name", text: "runtime" }), select),
        reasons.children.length ? reasons : null,
        params,
        buttons),
      el("div", { class: "code-pair" },
        el("figure", { class: "code leaky" }, el("figcaption", { text: "leaky" }), el("pre", {}, leakyCode)),
        el("figure", { class: "code fixed" }, el("figcaption", { text: "fixed" }), el("pre", {}, fixedCode))),
      codePath);
  }

  async function loadScenarios() {
    try {
      const data = await api("/api/scenarios");
      const list = listOf(data, "scenarios");
      cardsEl.replaceChildren(...list.map(renderCard));
      if (!list.length) cardsEl.append(el("p", { class: "empty", text: "No scenarios available." }));
    } catch (err) {
      cardsEl.replaceChildren(el("p", { class: "empty", text: "Could not load scenarios." }));
      showError(err, "scenarios");
    }
  }

  loadScenarios();
  loadRuns();
  renderRuns();
  return { upsertRun, loadRuns, renderRuns, updateVerdicts, mappings };
}
