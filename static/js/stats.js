// Stats strip: one card per watch (current, peak, growth rate from a 60 s least-squares
// fit of the selected metric) and the system-memory strip. Cards are rebuilt on structural
// changes; the numbers refresh twice a second, which is as fast as a person can read them.

import { formatBytes, formatRate, mibPerMin, recentSlope } from "./format.js";
import { METRICS, state } from "./state.js";

export const GROWTH_ALERT_MIB_PER_MIN = 1; // above this, the rate is shown as a leak (red)
// A leak-lab run's first seconds are start-up (imports, first allocations), not a trend.
export const WARMUP_SECONDS = 3;
const FIT_SECONDS = 60;

export function growthClass(bytesPerSec) {
  if (bytesPerSec === null) return "rate-none";
  const r = mibPerMin(bytesPerSec);
  if (r > GROWTH_ALERT_MIB_PER_MIN) return "rate-grow";
  if (r < -GROWTH_ALERT_MIB_PER_MIN) return "rate-shrink";
  return "rate-stable";
}

export function initStats({ colourOf, onRemove, onMappings }) {
  const strip = document.getElementById("stats");
  const cards = new Map(); // watch key -> {el, cur, peak, rate, kids}

  function render() {
    strip.replaceChildren();
    cards.clear();
    if (!state.watches.size) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No process watched yet: pick one on the left, or start a scenario in the leak lab below.";
      strip.appendChild(p);
      return;
    }
    // One row per watch under a single header: numbers line up, which is what people compare.
    const head = document.createElement("div");
    head.className = "stat-row stat-labels";
    for (const label of ["process", "now", "peak", "60 s trend", "", ""]) {
      const sp = document.createElement("span");
      sp.textContent = label;
      head.appendChild(sp);
    }
    strip.appendChild(head);
    for (const w of state.watches.values()) {
      const row = document.createElement("div");
      row.className = "stat-row stat-card";
      row.dataset.key = w.key;
      row.dataset.pid = w.pid;
      row.style.setProperty("--swatch", colourOf(w));
      if (w.exited) row.classList.add("exited");
      const name = document.createElement("span");
      name.className = "stat-name";
      name.textContent = w.confirmed || w.runId ? w.label : `${w.pid} (connecting…)`;
      name.title = w.process?.cmdline || "";
      let kids = null;
      if (w.children) {
        kids = document.createElement("span");
        kids.className = "stat-kids";
        kids.title = "descendant processes summed in";
        name.append(" ", kids);
      }
      const cur = value(), peak = value(), rate = value();
      const maps = document.createElement("button");
      maps.type = "button";
      maps.className = "small";
      maps.textContent = "Mappings diff";
      maps.title = "Which memory mappings grow over 5 s (smaps diff)";
      maps.disabled = !!w.exited;
      maps.addEventListener("click", () => onMappings(w, maps));
      const rm = document.createElement("button");
      rm.type = "button";
      rm.className = "remove";
      rm.textContent = "×";
      rm.title = `Stop watching ${w.pid}`;
      rm.setAttribute("aria-label", `Stop watching ${w.pid}`);
      rm.addEventListener("click", () => onRemove(w.key));
      row.append(name, cur, peak, rate, maps, rm);
      strip.appendChild(row);
      cards.set(w.key, { el: row, cur, peak, rate, kids });
    }
    update();
  }

  function update() {
    const metric = state.settings.metric;
    for (const w of state.watches.values()) {
      const c = cards.get(w.key);
      if (!c) continue;
      c.cur.textContent = formatBytes(w.latest(metric));
      c.peak.textContent = formatBytes(w.peak[metric]);
      const minT = w.run?.started_at ? w.run.started_at + WARMUP_SECONDS : -Infinity;
      const slope = w.exited ? null : recentSlope(w.samples, metric, FIT_SECONDS, undefined, minT);
      c.rate.textContent = slope === null ? "–" : formatRate(slope);
      c.rate.className = `v ${growthClass(slope)}`;
      const n = w.latest("children");
      if (c.kids) c.kids.textContent = n ? `+${n} child${n === 1 ? "" : "ren"}` : "";
    }
  }

  return { render, update, metricLabel: () => METRICS.find((m) => m.id === state.settings.metric).label };
}

function value() {
  const v = document.createElement("span");
  v.className = "v";
  v.textContent = "–";
  return v;
}

/** The system strip, fed by the `system` event every second. */
export function renderSystem(sys) {
  const set = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
  set("sys-total", formatBytes(sys.total));
  set("sys-available", formatBytes(sys.available));
  set("sys-used", `${Number(sys.percent).toFixed(0)} %`);
  set("sys-swap", sys.swap_total ? `${formatBytes(sys.swap_used)} / ${formatBytes(sys.swap_total)}` : "none");
  const used = document.getElementById("sys-used");
  if (used) used.classList.toggle("rate-grow", sys.percent >= 90);
}
