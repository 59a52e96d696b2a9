// View controls: metric, time window, pause/resume, log axis, theme, align-at-start.
// They only change state.settings and call onChange(name); main.js decides what redraws.

import { button, el } from "./dom.js";
import { METRICS, WINDOWS, state } from "./state.js";

const WINDOW_LABELS = { 60: "1 m", 300: "5 m", 900: "15 m", 0: "all" };

export function applyTheme() {
  document.documentElement.dataset.theme = state.settings.theme;
}

/** Presenter mode: larger text, the picker folded away (CSS keys off body.presenter). */
export function applyPresenter() {
  // On the root too: presenter text sizes are rem, which follow the root's font size.
  document.documentElement.classList.toggle("presenter", state.settings.present);
  document.body.classList.toggle("presenter", state.settings.present);
}

export function initControls({ onChange }) {
  const s = state.settings;

  // Metric selector. Language heap is only offered once some watch reports it.
  const metric = document.getElementById("metric");
  metric.replaceChildren(...METRICS.map((m) => el("option", { value: m.id, text: m.label })));
  metric.value = s.metric;
  metric.addEventListener("change", () => { s.metric = metric.value; onChange("metric"); });

  // Window: a segmented button group reads better on a projector than a dropdown.
  const win = document.getElementById("window");
  win.replaceChildren(...WINDOWS.map((sec) => button({
    "data-window": sec, text: WINDOW_LABELS[sec],
    onclick: () => { s.window = sec; sync(); onChange("window"); },
  })));

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

  const present = document.getElementById("present");
  present.addEventListener("click", () => togglePresent());

  /** Toggle presenter mode (the button and key p). */
  function togglePresent() {
    s.present = !s.present;
    applyPresenter();
    sync();
    onChange("present");
  }

  /** Pause or resume (the button and Space). */
  function togglePause() { pause.click(); }

  function sync() {
    metric.value = s.metric;
    for (const b of win.children) b.setAttribute("aria-pressed", String(Number(b.dataset.window) === s.window));
    pause.textContent = s.paused ? "▶ Resume" : "❚❚ Pause";
    pause.setAttribute("aria-pressed", String(s.paused));
    document.body.classList.toggle("paused", s.paused);
    log.checked = s.log;
    align.checked = s.align;
    theme.textContent = s.theme === "dark" ? "☀ Light" : "☾ Dark";
    present.setAttribute("aria-pressed", String(s.present));
  }

  /** Offer the language-heap metrics only where some watch measures it (or one is selected). */
  function refreshMetrics() {
    const any = [...state.watches.values()].some((w) => w.has("heap_used"));
    for (const id of ["heap_used", "rss_heap"]) {
      const opt = metric.querySelector(`option[value="${id}"]`);
      opt.disabled = !any && s.metric !== id;
      opt.title = any ? "" : "no watched process reports its language heap";
    }
  }

  applyTheme();
  applyPresenter();
  sync();
  refreshMetrics();
  return { refreshMetrics, togglePause, togglePresent, sync };
}
