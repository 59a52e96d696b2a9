// Stats strip: one row per watch that is not a leak-lab run's (those are in the runs list):
// current, peak and the server's growth verdict (the `growth` event; the page computes
// none). Rows are rebuilt on structural changes; the numbers refresh twice a second, which
// is as fast as a person can read them.

import { button, el, emptyNote } from "./dom.js";
import { describeGrowth, formatBytes } from "./format.js";
import { isPresenter, seriesOf, state } from "./state.js";

/** Set a verdict element from a server growth object (words, colour class, tooltip). */
export function showGrowth(node, growth, base = "verdict") {
  const v = describeGrowth(growth);
  node.textContent = v.text;
  node.className = `${base} ${v.cls}`;
  node.title = v.title;
  node.dataset.verdict = growth?.verdict || "";
}

export function initStats({ colourOf, onRemove, onMappings }) {
  const strip = document.getElementById("stats");
  const cards = new Map(); // watch key -> {cur, peak, rate, kids}
  const listed = (w) => !w.runId && !w.extraOf; // runs and their helpers: in the runs list

  function card(w) {
    const value = () => el("span", { class: "v", text: "–" });
    const cur = value(), peak = value(), rate = value();
    const kids = w.children ? el("span", { class: "stat-kids", title: "descendant processes summed in" }) : null;
    const name = el("span", { class: "stat-name", title: w.process?.cmdline || "" },
      w.confirmed || w.runId ? w.label : `${w.pid} (connecting…)`,
      kids ? " " : null, kids);
    // The audience watches what the presenter shows: nothing to measure or remove.
    const own = isPresenter();
    const maps = own && button({
      class: "small presenter-only", text: "Mappings diff", title: "Which memory mappings grow over 5 s (smaps diff)",
      disabled: !!w.exited, onclick: () => onMappings(w, maps),
    });
    const rm = own && button({
      class: "remove presenter-only", text: "×", title: `Stop watching ${w.pid}`, "aria-label": `Stop watching ${w.pid}`,
      onclick: () => onRemove(w.key),
    });
    const row = el("div", { class: `stat-row stat-card${w.exited ? " exited" : ""}`, "data-key": w.key, "data-pid": w.pid },
      name, cur, peak, rate, maps || null, rm || null);
    row.style.setProperty("--swatch", colourOf(w));
    cards.set(w.key, { cur, peak, rate, kids });
    return row;
  }

  function render() {
    cards.clear();
    const watches = [...state.watches.values()].filter(listed);
    strip.hidden = !watches.length && state.runs.size > 0;
    if (!watches.length) {
      strip.replaceChildren(emptyNote(isPresenter()
        ? "No process watched yet: open Processes to pick one, or start a scenario in the leak lab below."
        : "The presenter shows no process yet."));
      return;
    }
    // One row per watch under a single header: numbers line up, which is what people compare.
    const head = el("div", { class: "stat-row stat-labels" },
      ...["process", "now", "peak", "verdict", "", ""].map((text) => el("span", { text })));
    strip.replaceChildren(head, ...watches.map(card));
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
