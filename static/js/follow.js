// Room mode on the page. The presenter's page publishes what is on screen as `view`
// (processes, metric, window, log axis, align, pause, the last tool result), debounced, when
// shared. An audience page follows it: it watches exactly those processes and takes the
// settings and result, until the viewer zooms or pans the chart or changes a setting
// locally; the Follow button returns to the presenter's latest view in one click.

import { addWatch, publishView, removeWatch } from "./connection.js";
import { debounce } from "./format.js";
import { isPresenter, METRICS, on, state, watchKey, WINDOWS } from "./state.js";
import { showInfo } from "./toast.js";

const PUBLISH_MS = 100;
// Settings an audience member may change for themselves; doing so leaves follow.
const LOCAL = new Set(["metric", "window", "log", "align", "paused"]);
const ROLE_RELOAD_KEY = "memdash-role-reload";

/** The presenter's screen as a `view` payload. `result` is the findings panel's content. */
function currentView(result) {
  const s = state.settings;
  return {
    // An exited process can no longer be watched: the audience would only get an error.
    // (a tree's members come with the tree's watch)
    watches: [...state.watches.values()].filter((w) => !w.exited && w.own).map((w) => ({
      pid: w.pid, children: w.children,
      ...(w.runId ? { run_id: w.runId } : {}), ...(w.extraOf ? { extra_of: w.extraOf } : {}),
    })),
    metric: s.metric, window: s.window, log: s.log, align: s.align, paused: s.paused,
    result,
  };
}

/**
 * `applySettings(names)` redraws after settings changed; `result()` is the shown result (or
 * null), `showResult(result)` shows one (null hides it). Returns {settingChanged(name),
 * resultChanged(), userZoomed(), follow(on)}.
 */
export function initFollow({ applySettings, result, showResult }) {
  const room = state.room;
  const button = document.getElementById("follow");
  let sent = "";

  // ---- presenter: publish --------------------------------------------------------------

  const publish = debounce(async (force = false) => {
    if (!isPresenter() || !room.shared) return;
    const view = currentView(result());
    const text = JSON.stringify(view);
    if (text === sent && !force) return;
    if (await publishView(view)) sent = text;
  }, PUBLISH_MS);

  if (isPresenter()) {
    for (const event of ["watch-added", "watch-removed", "watch-exit", "watch-changed"]) on(event, () => publish());
  }

  // ---- audience: follow ------------------------------------------------------------------

  function apply(view) {
    const want = new Map();
    for (const v of Array.isArray(view.watches) ? view.watches : []) {
      if (Number.isInteger(v?.pid)) want.set(watchKey(v.pid, !!v.children), v);
    }
    for (const w of [...state.watches.values()]) if (w.own && !want.has(w.key)) removeWatch(w.key);
    for (const v of want.values()) addWatch(v.pid, !!v.children, { runId: v.run_id ?? null, extraOf: v.extra_of ?? null });
    const s = state.settings;
    const changed = [];
    const take = (name, value, ok) => {
      if (ok && s[name] !== value) { s[name] = value; changed.push(name); }
    };
    take("metric", view.metric, METRICS.some((m) => m.id === view.metric));
    take("window", view.window, WINDOWS.includes(view.window));
    take("log", !!view.log, "log" in view);
    take("align", !!view.align, "align" in view);
    take("paused", !!view.paused, "paused" in view);
    applySettings(changed);
    showResult(view.result ?? null);
  }

  function render() {
    document.body.dataset.following = room.following ? "1" : "0";
    if (!button) return;
    button.setAttribute("aria-pressed", String(room.following));
    button.textContent = room.following ? "● Following presenter" : "↻ Follow presenter";
    button.title = room.following
      ? "Your chart mirrors the presenter's. Zoom or change a setting to look around on your own."
      : "Back to what the presenter shows (drops your zoom)";
  }

  /** Follow the presenter again (re-applying the latest view), or stop following. */
  function follow(on) {
    if (isPresenter() || room.following === on) return;
    room.following = on;
    if (on) {
      state.zoomEpoch++; // the chart's uirevision: drops the local zoom
      if (room.view) apply(room.view);
      applySettings(["zoom"]);
    }
    render();
  }

  on("view", (view) => {
    room.view = view;
    if (!isPresenter() && room.following) apply(view);
  });

  // The server's word on this connection's role. The page was rendered for a role; if the
  // two differ (memdash restarted with a new token, the cookie is stale), reload once.
  on("hello", (hello) => {
    room.shared = !!hello.shared;
    document.body.dataset.shared = room.shared ? "1" : "0";
    if (hello.role && hello.role !== room.role) {
      const last = Number(sessionStorage.getItem(ROLE_RELOAD_KEY)) || 0;
      if (Date.now() - last > 30000) {
        sessionStorage.setItem(ROLE_RELOAD_KEY, String(Date.now()));
        window.location.reload();
        return;
      }
      showInfo(`memdash sees this page as ${hello.role}; reload to update it`, 8000);
    }
    if (isPresenter()) publish(true); // after a (re)connect the server may have no view yet
  });

  button?.addEventListener("click", () => follow(!room.following));
  render();

  return {
    /** A setting changed here: the presenter publishes it; an audience member leaves follow. */
    settingChanged(name) {
      if (isPresenter()) { publish(); return; }
      if (LOCAL.has(name)) follow(false);
    },
    resultChanged() { if (isPresenter()) publish(); },
    /** The viewer zoomed or panned the chart. */
    userZoomed() { follow(false); },
    follow,
  };
}
