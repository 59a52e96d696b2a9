// Wire-up: restore the view from the URL, create the modules, route state events
// between them, connect the socket. Each module owns one concern; this file owns none.

import { api } from "./api.js";
import { Chart } from "./charts.js";
import { addWatch, connect, dropConnection, removeWatch, setChildren, tellDrawn, widenWatches } from "./connection.js";
import { applyPresenter, applyTheme, initControls } from "./controls.js";
import { initFollow } from "./follow.js";
import { describeHeap, heapButtons, heapNote } from "./heap.js";
import { initKeep } from "./keep.js";
import { initKeys } from "./keys.js";
import { initLab } from "./lab.js";
import { initPicker } from "./picker.js";
import { initReplay } from "./replay.js";
import { refine } from "./resolution.js";
import { initShareQr } from "./share-qr.js";
import { FINISHED, isPresenter, membersOf, on, state } from "./state.js";
import { initStats, renderSystem } from "./stats.js";
import { showError } from "./toast.js";
import { readUrl, writeUrl } from "./urlstate.js";

const initial = readUrl();
Object.assign(state.settings, initial.settings);
applyTheme(); // before the first paint of the chart, so Plotly picks up the right colours
applyPresenter();

const chart = new Chart(document.getElementById("chart"));

/** Redraw after settings changed (here, or taken from the presenter's view). */
function settingsChanged(names) {
  for (const name of names) {
    if (name === "paused") chart.setPaused(state.settings.paused);
    else chart.invalidate();
    if (name === "window") widenWatches(); // a longer window needs the older history
    if (name === "theme") stats.render(); // swatch colours follow the theme
    if (name === "metric") { stats.update(); tellDrawn(); }
    if (name === "present") picker?.setOpen(false);
  }
  controls.sync();
  writeUrl();
}

const controls = initControls({
  onChange(name) {
    settingsChanged([name]);
    follow.settingChanged(name);
  },
});

const stats = initStats({
  colourOf: (w) => chart.colourOf(w),
  onRemove: (key) => removeWatch(key),
  onMappings: (w, btn) => lab.mappings(w, btn),
  onChildren: (w, on) => setChildren(w, on),
  heapControls: {
    note: heapNote,
    buttons: (w) => heapButtons(w, {
      tools: lab.heapTools,
      // Attached: its heap is drawn beside RSS (the RSS + heap metric).
      onAttached() {
        if (state.settings.metric === "rss_heap") return;
        state.settings.metric = "rss_heap";
        settingsChanged(["metric"]);
        follow.settingChanged("metric");
      },
    }),
  },
});

const lab = initLab({
  addWatch,
  chart,
  onRunsChanged() { chart.invalidate(); stats.render(); },
  onResult: () => follow.resultChanged(),
});

// The audience has no picker: it may not list the machine's processes. (In a replay it
// lists the recorded series, a tree's total among them.)
const picker = isPresenter() ? initPicker({ onPick: (pid, children = false) => addWatch(pid, children) }) : null;

const replay = initReplay({
  onSeek() { chart.clearMarks(); structural(); },
  showResult: (r) => lab.showResult(r),
});

const follow = initFollow({
  applySettings: settingsChanged,
  result: () => lab.result(),
  // The audience cannot download the presenter's heap snapshot: the link is left out.
  showResult: (r) => lab.showResult(isPresenter() || !r ? r : { ...r, download: null }),
});
chart.onUserZoom = (range) => {
  follow.userZoomed();
  refine(range, () => chart.invalidate());
};
initShareQr();
initKeep(document.getElementById("chart"));

initKeys({
  // Replaying, Space plays and pauses the recording; c and s would change something.
  pause: () => (replay.active() ? replay.toggle() : controls.togglePause()),
  compare: () => replay.active() || lab.compareSelected(),
  stopAll: () => replay.active() || lab.stopAll(),
  present: () => controls.togglePresent(),
});

// ---- state events ----------------------------------------------------------

function structural() {
  chart.invalidate();
  stats.render();
  lab.renderRuns();
  controls.refreshMetrics();
  writeUrl();
}
on("watch-added", structural);
on("watch-changed", structural);
on("watch-removed", (w) => { chart.forget(w.key); structural(); });
// What memdash sees of a process's language heap: asked once it is confirmed.
on("watch-confirmed", (w) => describeHeap(w));
on("tree-changed", (tree) => { for (const m of membersOf(tree)) describeHeap(m); structural(); });
on("tree-ranking", () => stats.render());
on("heap", () => { stats.render(); controls.refreshMetrics(); });
on("watch-exit", (w) => {
  // A finished leak-lab run already has its stop/cap/crash mark at this point.
  if (!(w.run && FINISHED.has(w.run.state))) chart.mark(w.key, w.exited.t, w.exited.reason === "pid reused" ? "✖ pid reused" : "✖ exited", "exit");
  structural();
});

const heapSeen = new Set();
on("samples", ({ watch, added, inOrder }) => {
  chart.push(watch, added, inOrder);
  // The language-heap metric becomes selectable the moment a watch reports it, and its
  // heap traces are drawn from then on (an inspector attached later: new traces, a rebuild).
  if (!heapSeen.has(watch.key) && added.some((s) => s.heap_used !== undefined)) {
    heapSeen.add(watch.key);
    controls.refreshMetrics();
    chart.invalidate();
  }
});

on("system", renderSystem);
// A recording opened with nothing watched: its series are in the picker.
on("hello", (hello) => { if (hello.replay && !state.watches.size) picker?.setOpen(true); });
on("run-event", (run) => lab.upsertRun(run));
on("mark", (m) => lab.mark(m));
on("runs-cleared", (ids) => lab.cleared(ids));
on("resync", () => lab.loadRuns());

const badge = document.getElementById("connection");
const BADGE_TEXT = {
  connecting: "connecting…",
  connected: "connected",
  disconnected: "connection lost, reconnecting…",
  reconnected: "reconnected",
  refused: "room full, retrying…",
};
on("connection", (status) => {
  badge.textContent = BADGE_TEXT[status] || status;
  badge.dataset.status = status;
});

// Numbers a person reads: twice a second is plenty, and independent of the sample rate.
setInterval(() => { stats.update(); lab.updateVerdicts(); }, 500);

// ---- start -----------------------------------------------------------------

api("/api/system").then(renderSystem).catch((err) => showError(err, "system memory"));
// The audience watches what the presenter shows (the `view` at connect), not its own URL.
if (isPresenter()) for (const w of initial.watches) addWatch(w.pid, w.children);
stats.render();
chart.invalidate();
connect();
writeUrl();

// Read-only test hook: tests read plotted data here instead of scraping SVG.
window.memdash = Object.freeze({
  /** [{pid, children, name, metric, x: [epoch s], y: [bytes]}] as currently plotted. */
  traces: () => chart.snapshot(),
  /** Simulate a network drop (the page reconnects and backfills the gap). */
  dropConnection,
  get state() {
    return {
      connection: state.connection,
      settings: { ...state.settings },
      watches: [...state.watches.values()].map((w) => ({
        pid: w.pid, children: w.children, name: w.label, exited: w.exited, samples: w.samples.length, lastT: w.lastT,
        growth: w.growth, own: w.own, memberOf: w.memberOf, tree: w.tree, heap: w.heap,
      })),
      runs: [...state.runs.values()].map((r) => ({ ...r })),
      room: { ...state.room }, // role, shared, following and the presenter's last view
      gone: [...state.gone],
    };
  },
});
