// View controls: metric, time window, pause/resume, log axis, theme, align-at-start.
// They only change state.settings and call onChange(name); main.js decides what redraws.

import { METRICS, WINDOWS, state } from "./state.js";

const WINDOW_LABELS = { 60: "1 m", 300: "5 m", 900: "15 m", 0: "all" };

export function applyTheme() {
  document.documentElement.dataset.theme = state.settings.theme;
}

export function initControls({ onChange }) {
  const s = state.settings;

  // Metric selector. Language heap is only offered once some watch reports it.
  const metric = document.getElementById("metric");
  metric.replaceChildren(
    ...METRICS.map((m) => {
      const o = document.createElement("option");
      o.value = m.id;
      o.textContent = m.label;
      return o;
    }),
  );
  metric.value = s.metric;
  metric.addEventListener("change", () => { s.metric = metric.value; onChange("metric"); });

  // Window: a segmented button group reads better on a projector than a dropdown.
  const win = document.getElementById("window");
  win.replaceChildren(
    ...WINDOWS.map((sec) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.window = sec;
      b.textContent = WINDOW_LABELS[sec];
      b.addEventListener("click", () => { s.window = sec; sync(); onChange("window"); });
      return b;
    }),
  );

  const pause = document.getElementById("pause");
  pause.addEventListener("click", () => { s.paused = !s.paused; sync(); onChange("paused"); });

  const log = document.getElementById("log");
  log.addEventListener("change", () => { s.log = log.checked; onChange("log"); });

  const align = document.getElementById("align");
  align.addEventListener("change", () => { s.align = align.checked; onChange("align"); });

  const theme = document.getElementById("theme");
  theme.addEventListener("click", () => {
    s.theme = s.theme === "dark" ? "light" : "dark";
    applyTheme();
    sync();
    onChange("theme");
  });

  function sync() {
    metric.value = s.metric;
    for (const b of win.children) b.setAttribute("aria-pressed", String(Number(b.dataset.window) === s.window));
    pause.textContent = s.paused ? "▶ Resume" : "❚❚ Pause";
    pause.setAttribute("aria-pressed", String(s.paused));
    document.body.classList.toggle("paused", s.paused);
    log.checked = s.log;
    align.checked = s.align;
    theme.textContent = s.theme === "dark" ? "☀ Light" : "☾ Dark";
  }

  /** Offer "Language heap" only where some watch measures it (or it is already selected). */
  function refreshMetrics() {
    const any = [...state.watches.values()].some((w) => w.has("heap_used"));
    const opt = metric.querySelector('option[value="heap_used"]');
    opt.disabled = !any && s.metric !== "heap_used";
    opt.title = any ? "" : "no watched process reports its language heap";
  }

  applyTheme();
  sync();
  refreshMetrics();
  return { sync, refreshMetrics };
}
