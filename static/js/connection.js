// The Socket.IO link: watch/unwatch with acks, live events into state, and recovery.
// On every (re)connect each watch is re-sent with `since` = the last t we hold, so the
// server backfills exactly the gap and Watch.merge drops any overlap: no hole, no duplicates.
// A first watch asks only for what the chart can show (the window on screen, about one
// sample per pixel); a long history then comes as min/max pairs (`bucket`), refined on zoom.
// Room mode: `hello` (role), `view` (the presenter's screen) and a refused connection.
// `draw` tells the server which sample fields the chart draws: USS, PSS, swap and heap +
// anon are costly to read, so they come every second only while some page draws them.

import { toApiError } from "./api.js";
import { addSamples, confirmWatch, dropWatch, emit, markExited, moveWatch, putWatch, seriesOf, state, watchKey } from "./state.js";
import { showError } from "./toast.js";
import { applyTree } from "./trees.js";

const ACK_TIMEOUT_MS = 10000;
// Codes meaning "this process is gone": keep the watch on screen, mark it exited.
const GONE = new Set(["no_such_process", "process_gone", "zombie"]);
const MAX_POINTS = 2000;
const REFUSED_RETRY_MS = [10000, 20000]; // a full room: try again after 10-20 s (spread out)

let socket = null;
let everConnected = false;
let reconnectedTimer = null;
// Bumped when a replay's cursor jumps (resendWatches): an ack of a watch sent before the
// jump carries the old cursor's history and is dropped.
let epoch = 0;

function setConnection(status) {
  state.connection = status;
  // Tests and CSS read this; "reconnected" is a flavour of connected.
  document.body.dataset.connection = status === "connected" || status === "reconnected" ? "connected" : "disconnected";
  emit("connection", status);
}

/** Emit with an ack, as a promise. Rejects with ApiError on an error body or a timeout. */
function request(event, payload) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(toApiError({ error: { code: "timeout", message: `no answer to ${event} within ${ACK_TIMEOUT_MS / 1000} s` } })),
      ACK_TIMEOUT_MS,
    );
    socket.emit(event, payload, (resp) => {
      clearTimeout(timer);
      if (!resp || resp.error) reject(toApiError(resp || { error: { code: "error", message: "empty ack" } }));
      else resolve(resp);
    });
  });
}

/** Does the history held for `w` reach back as far as the window on screen? */
function covers(w) {
  const win = state.settings.window;
  return w.span === 0 || (win !== 0 && win <= w.span);
}

async function sendWatch(w, { widen = false } = {}) {
  if (w.exited) return; // nothing more will come; the server would refuse anyway
  if (!w.own) return; // a tree's member: the tree's watch brings its samples
  const payload = { pid: w.pid, children: w.children, max_points: maxPoints() };
  if (w.lastT !== undefined && !widen) payload.since = w.lastT;
  else w.span = state.settings.window; // the history asked for: this window (0: all)
  if (state.settings.window) payload.window = state.settings.window;
  const sent = epoch;
  try {
    const resp = await request("watch", payload);
    if (state.watches.get(w.key) !== w || sent !== epoch) return; // removed, or the cursor jumped
    confirmWatch(w, resp.process, resp.samples, resp.bucket || 0);
    if (resp.members) applyTree(w, resp);
    emit("watch-confirmed", w);
  } catch (err) {
    if (state.watches.get(w.key) !== w || sent !== epoch) return;
    if (w.confirmed && GONE.has(err.code)) {
      // It died while we were away: keep its history on screen.
      markExited(w, w.lastT ?? Date.now() / 1000);
      return;
    }
    if (GONE.has(err.code)) {
      // A saved link to a process that has gone since: one quiet line, not a red toast.
      if (!state.gone.includes(w.pid)) state.gone.push(w.pid);
      dropWatch(w);
      return;
    }
    showError(err, `watch ${w.pid}`);
    // A pid that never worked (bad pid in URL, typo): drop it, keep the page going.
    if (!w.confirmed) dropWatch(w);
  }
}

/** The metric changed (or we connected): say which sample fields the chart draws now. */
export function tellDrawn() {
  if (socket && socket.connected) socket.emit("draw", { fields: seriesOf(state.settings.metric) });
}

/** A replay's cursor jumped and every history was dropped: watch again, without `since`. */
export function resendWatches() {
  epoch++;
  if (socket && socket.connected) for (const w of state.watches.values()) sendWatch(w);
}

/** A replay control (`seek`, `play`, `pause`) with its ack, as a promise (ApiError on refusal). */
export function send(event, payload) {
  if (!socket || !socket.connected) return Promise.reject(toApiError({ error: { code: "network", message: "not connected" } }));
  return request(event, payload);
}

/** The window grew past what some watch's history was asked for: ask for the rest. */
export function widenWatches() {
  if (!socket || !socket.connected) return;
  for (const w of state.watches.values()) if (w.confirmed && !covers(w)) sendWatch(w, { widen: true });
}

/** About one sample per pixel of the chart's width: more could not be drawn. */
function maxPoints() {
  const px = document.getElementById("chart")?.clientWidth || 1000;
  return Math.max(2, Math.min(MAX_POINTS, Math.round(px)));
}

/**
 * Start watching (or return the existing watch). Safe to call while disconnected:
 * the watch is sent when the socket connects.
 */
export function addWatch(pid, children = false, { runId = null, extraOf = null } = {}) {
  const { watch, added } = putWatch(pid, children, { runId, extraOf });
  if (added && socket && socket.connected) sendWatch(watch);
  return watch;
}

export async function removeWatch(key) {
  const w = state.watches.get(key);
  if (!w || !dropWatch(w)) return;
  if (socket && socket.connected && w.own && w.confirmed && !w.exited) {
    try { await request("unwatch", { pid: w.pid, children: w.children }); } catch (err) {
      if (!GONE.has(err.code)) showError(err, `unwatch ${w.pid}`);
    }
  }
}

/**
 * "with children" on a process's line: on, the line becomes its tree (the total and one line
 * per member; the process's own history goes on as the root member); off, back to the
 * process alone. Returns the watch that now holds the line.
 */
export async function setChildren(w, on) {
  const connected = socket && socket.connected;
  if (on) {
    const { watch: tree, added } = putWatch(w.pid, true);
    moveWatch(tree.key, w.key);
    if (added && connected) await sendWatch(tree);
    if (!tree.confirmed || state.watches.get(tree.key) !== tree) return w;
    if (w.own && state.watches.get(w.key) === w) {
      w.own = false; // from now on drawn as the tree's root member
      w.memberOf = tree.key;
      if (connected && w.confirmed && !w.exited) request("unwatch", { pid: w.pid, children: false }).catch(() => {});
      emit("watch-changed", w);
    }
    return tree;
  }
  let root = state.watches.get(watchKey(w.pid, false));
  if (root) {
    root.own = true;
    root.memberOf = null;
    if (connected) await sendWatch(root);
  } else root = addWatch(w.pid, false);
  moveWatch(root.key, w.key);
  await removeWatch(w.key);
  emit("watch-changed", root);
  return root;
}

function onSamples(msg) {
  const w = state.watches.get(watchKey(msg.pid, msg.children));
  if (w && msg.samples) addSamples(w, msg.samples);
}

function onGrowth(msg) {
  const w = state.watches.get(watchKey(msg.pid, msg.children));
  if (w) w.growth = msg.growth || null; // shown by the stats' twice-a-second refresh
}

function onExit(msg) {
  const w = state.watches.get(watchKey(msg.pid, msg.children));
  if (w) markExited(w, msg.t, msg.reason || "exited");
}

/** Drop the connection as a failing network would; the client reconnects by itself.
 *  For trying the backfill by hand (and for the browser tests). */
export function dropConnection() {
  socket?.io.engine?.close();
}

/** The presenter's screen, for the audience to follow (presenter of a shared room only). */
export async function publishView(view) {
  if (!socket || !socket.connected) return false;
  try { await request("view", view); } catch (err) { showError(err, "sharing your view with the room"); }
  return true;
}

/** The server refused the connection (a full room): say so, and try again a little later. */
function onConnectError(err) {
  const body = err?.data;
  if (!body?.error) return; // a network failure: the client retries by itself
  setConnection("refused");
  showError(toApiError(body), "joining");
  const [lo, hi] = REFUSED_RETRY_MS;
  setTimeout(() => socket.connect(), lo + Math.random() * (hi - lo));
}

export function connect() {
  // `io` is the global from /assets/socket.io.min.js. Same origin, default path.
  socket = window.io({ reconnectionDelayMax: 3000 });
  setConnection("connecting");

  socket.on("connect", () => {
    clearTimeout(reconnectedTimer);
    if (everConnected) {
      setConnection("reconnected");
      reconnectedTimer = setTimeout(() => state.connection === "reconnected" && setConnection("connected"), 5000);
    } else {
      setConnection("connected");
    }
    everConnected = true;
    tellDrawn(); // before the watches, so their detail figures come at the rate drawn
    for (const w of state.watches.values()) sendWatch(w);
    emit("resync"); // let the lab refresh runs it may have missed
  });
  socket.on("disconnect", (reason) => {
    setConnection("disconnected");
    // A server-side disconnect is not retried by the client on its own.
    if (reason === "io server disconnect") socket.connect();
  });
  // One message per flush carries a batch per watched process, one argument each.
  socket.on("samples", (...batches) => batches.forEach(onSamples));
  socket.on("process_exit", onExit);
  // A tree's membership or ranking changed (members joined or exited; the root exited).
  socket.on("tree", (msg) => msg && applyTree(state.watches.get(watchKey(msg.pid, true)), msg));
  socket.on("recording", (rec) => emit("recording", rec || null));
  socket.on("system", (sys) => emit("system", sys));
  socket.on("run", (run) => emit("run-event", run));
  // The server's growth verdicts, one argument per watched target, about once a second.
  socket.on("growth", (...items) => items.forEach(onGrowth));
  socket.on("mark", (mark) => emit("mark", mark));
  socket.on("runs_cleared", (msg) => emit("runs-cleared", msg?.run_ids || []));
  socket.on("connect_error", onConnectError);
  socket.on("hello", (hello) => emit("hello", hello || {}));
  socket.on("view", (view) => view && emit("view", view));
  // Replay only (memdash open): the cursor's state, and a tool's result as the cursor passes it.
  socket.on("replay", (cursor) => cursor && emit("replay", cursor));
  socket.on("tool_result", (result) => result && emit("tool-result", result));
}
