// The URL query is the shareable view: watched pids plus settings, e.g.
// ?pid=1&pid=2&cpid=3&metric=rss&window=300&log=0&theme=dark&align=0&present=1
// `cpid` is a watch with children summed in (leak-lab runs use these).
// Written with replaceState so the back button is not flooded with every click.

import { METRICS, WINDOWS, state } from "./state.js";

function prefersTheme() {
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
}

/** Parse the current URL into {watches: [{pid, children}], settings}. Bad values fall back to defaults. */
export function readUrl() {
  const q = new URLSearchParams(window.location.search);
  const watches = [];
  const seen = new Set();
  // Keep malformed pids (e.g. "abc", "-1") so the server's error reaches the user as a toast
  // instead of the pid silently vanishing from a shared link.
  for (const [name, children] of [["pid", false], ["cpid", true]]) {
    for (const raw of q.getAll(name)) {
      const v = raw.trim();
      if (!v || seen.has(`${v}:${children}`)) continue;
      seen.add(`${v}:${children}`);
      const n = Number(v);
      watches.push({ pid: Number.isInteger(n) ? n : v, children });
    }
  }
  const metric = q.get("metric");
  const win = Number(q.get("window"));
  const theme = q.get("theme");
  return {
    watches,
    settings: {
      metric: METRICS.some((m) => m.id === metric) ? metric : "rss",
      window: q.get("window") === "all" ? 0 : q.has("window") && WINDOWS.includes(win) ? win : 300,
      log: q.get("log") === "1",
      theme: theme === "light" || theme === "dark" ? theme : prefersTheme(),
      align: q.get("align") === "1",
      paused: false,
      present: q.get("present") === "1",
    },
  };
}

/** Write the current state back to the URL (without reloading). */
export function writeUrl() {
  const q = new URLSearchParams();
  // A tree's members come with its cpid; only what this page asked for itself is written.
  for (const w of state.watches.values()) if (w.own) q.append(w.children ? "cpid" : "pid", String(w.pid));
  const s = state.settings;
  q.set("metric", s.metric);
  q.set("window", s.window === 0 ? "all" : String(s.window));
  q.set("log", s.log ? "1" : "0");
  q.set("theme", s.theme);
  if (s.align) q.set("align", "1");
  if (s.present) q.set("present", "1");
  const url = `${window.location.pathname}?${q.toString()}`;
  if (url !== window.location.pathname + window.location.search) {
    window.history.replaceState(null, "", url);
  }
}
