// Stats strip: one card per watch that is not a leak-lab run's (those are in the runs list):
// current, peak and the server's growth verdict (the `growth` event; the page computes
// none), what memdash sees of its language heap, and (presenter) the "with children" toggle:
// on, the card is the tree's total with its members ranked by growth ("which worker leaks").
// A saved link's processes that are gone get one quiet line. Rows are rebuilt on structural changes; the numbers refresh twice a second, which
// is as fast as a person can read them.

import { button, el, emptyNote } from "./dom.js";
import { describeGrowth, formatBytes } from "./format.js";
import { isPresenter, seriesOf, state, watchKey } from "./state.js";
import { rankedMembers } from "./trees.js";

/** Set a verdict element from a server growth object (words, colour class, tooltip). */
export function showGrowth(node, growth, base = "verdict") {
  const v = describeGrowth(growth);
  node.textContent = v.text;
  node.className = `${base} ${v.cls}`;
  node.title = v.title;
  node.dataset.verdict = growth?.verdict || "";
}

export function initStats({ colourOf, onRemove, onMappings, onChildren, heapControls }) {
  const strip = document.getElementById("stats");
  const cards = new Map(); // watch key -> {cur, peak, rate, kids} (trees' members too)
  const listed = (w) => w.own && !w.runId && !w.extraOf; // runs and their helpers: in the runs list

  function numbers(w) {
    const value = (cls) => el("span", { class: `v ${cls}`, text: "–" });
    const c = { cur: value("now"), peak: value("peak"), rate: value("verdict") };
    cards.set(w.key, c);
    return c;
  }

  /** One member of a tree, in the server's ranking order: swatch, name, now, verdict. */
  function memberRow(m, row, first) {
    const c = numbers(m);
    const leads = first && m.growth?.verdict === "growing";
    const line = el("li", { class: `member-row${leads ? " leads" : ""}`, "data-pid": m.pid, "data-key": m.key },
      swatchOf(colourOf(m)),
      el("span", { class: "member-name", title: m.process?.cmdline || row.cmdline || "", text: `${row.name || m.process?.name || "pid"} (${m.pid})` }),
      c.cur, c.rate,
      leads ? el("span", { class: "leads-note", text: "leaks most" }) : null,
      row.no_detail ? el("span", { class: "muted small-note", title: row.no_detail, text: "no uss/pss" }) : null,
      heapControls.note(m));
    return line;
  }

  /** A tree's members ranked by growth ("which worker leaks"), and its note. */
  function treePart(w) {
    const ranked = rankedMembers(w);
    const info = w.tree;
    if (!info) return null;
    return el("div", { class: "tree-part" },
      el("h3", { class: "tree-head", text: `Which worker leaks: ${ranked.length} process${ranked.length === 1 ? "" : "es"}, fastest growing first` }),
      el("ol", { class: "tree-members", "aria-label": `Members of ${w.pid}'s tree by growth` },
        ...ranked.map(({ row, watch }, i) => memberRow(watch, row, i === 0))),
      info.note ? el("p", { class: "tree-note", text: info.note }) : null);
  }

  function card(w) {
    const { cur, peak, rate } = numbers(w);
    const kids = w.children ? el("span", { class: "stat-kids", title: "descendant processes summed in" }) : null;
    cards.get(w.key).kids = kids;
    const name = el("span", { class: "stat-name", title: w.process?.cmdline || "" },
      w.confirmed || w.runId ? w.label : `${w.pid} (connecting…)`,
      kids ? " " : null, kids);
    // The audience watches what the presenter shows: nothing to measure, toggle or remove.
    const own = isPresenter();
    const maps = own && button({
      class: "small presenter-only live-only", text: "Mappings diff", title: "Which memory mappings grow over 5 s (smaps diff)",
      disabled: !!w.exited, onclick: () => onMappings(w, maps),
    });
    const tree = own && button({
      class: "small presenter-only toggle", text: "with children", "data-toggle": "children",
      "aria-pressed": String(w.children), disabled: !!w.exited && !w.children,
      title: w.children ? "Back to this process alone" : "Watch this process and all its descendants: one line each, plus their total",
      onclick: () => onChildren(w, !w.children),
    });
    const rm = own && button({
      class: "remove presenter-only", text: "×", title: `Stop watching ${w.pid}`, "aria-label": `Stop watching ${w.pid}`,
      onclick: () => onRemove(w.key),
    });
    const actions = own ? el("div", { class: "stat-actions presenter-only" }, tree, maps, ...heapControls.buttons(w)) : null;
    const row = el("div", { class: `stat-card${w.exited ? " exited" : ""}`, "data-key": w.key, "data-pid": w.pid, "data-children": w.children ? "1" : "0" },
      el("div", { class: "stat-top" }, name, rm || null),
      el("div", { class: "stat-nums" }, cur, peak, rate),
      heapControls.note(w.children ? state.watches.get(watchKey(w.pid, false)) || w : w),
      actions,
      w.children ? treePart(w) : null);
    row.style.setProperty("--swatch", colourOf(w));
    return row;
  }

  function goneNote() {
    if (!state.gone.length) return null;
    const pids = state.gone.join(", ");
    return el("p", { class: "gone-note", role: "status", text: `Not running any more, so not shown: ${pids}` });
  }

  function render() {
    cards.clear();
    const watches = [...state.watches.values()].filter(listed);
    const gone = goneNote();
    strip.hidden = !watches.length && !gone && state.runs.size > 0;
    if (!watches.length) {
      strip.replaceChildren(...[gone, emptyNote(isPresenter()
        ? "No process watched yet: open Processes to pick one, or start a scenario in the leak lab below."
        : "The presenter shows no process yet.")].filter(Boolean));
      return;
    }
    strip.replaceChildren(...[gone, ...watches.map(card)].filter(Boolean));
    update();
  }

  function update() {
    const metric = seriesOf(state.settings.metric)[0];
    for (const w of state.watches.values()) {
      const c = cards.get(w.key);
      if (!c) continue;
      c.cur.textContent = formatBytes(w.latest(metric));
      c.peak.textContent = formatBytes(w.peak[metric]);
      showGrowth(c.rate, w.exited ? null : w.growth, "v verdict");
      const n = w.latest("children");
      if (c.kids) c.kids.textContent = n ? `+${n} child${n === 1 ? "" : "ren"}` : "";
    }
  }

  return { render, update };
}

function swatchOf(colour) {
  const s = el("span", { class: "swatch", "aria-hidden": "true" });
  s.style.setProperty("--c", colour);
  return s;
}

/** The system strip, fed by the `system` event every second. */
export function renderSystem(sys) {
  const set = (id, text) => { const node = document.getElementById(id); if (node) node.textContent = text; };
  set("sys-total", formatBytes(sys.total));
  set("sys-available", formatBytes(sys.available));
  set("sys-used", `${Number(sys.percent).toFixed(0)} %`);
  set("sys-swap", sys.swap_total ? `${formatBytes(sys.swap_used)} / ${formatBytes(sys.swap_total)}` : "none");
  const used = document.getElementById("sys-used");
  if (used) used.classList.toggle("verdict-growing", sys.percent >= 90);
}
