// The Socket.IO link: watch/unwatch with acks, live events into state, and recovery.
// On every (re)connect each watch is re-sent with `since` = the last t we hold, so the
// server backfills exactly the gap and Watch.merge drops any overlap: no hole, no duplicates.

import { toApiError } from "./api.js";
import { addSamples, confirmWatch, dropWatch, emit, markExited, putWatch, state, watchKey } from "./state.js";
import { showError } from "./toast.js";

const ACK_TIMEOUT_MS = 10000;
// Codes meaning "this process is gone": keep the watch on screen, mark it exited.
const GONE = new Set(["no_such_process", "process_gone", "zombie"]);

let socket = null;
let everConnected = false;
let reconnectedTimer = null;

function setConnection(status) {
  state.connection = status;
  // Tests and CSS read this; "reconnected" is a flavour of connected.
  document.body.dataset.connection = status === "disconnected" || status === "connecting" ? "disconnected" : "connected";
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

async function sendWatch(w) {
  if (w.exited) return; // nothing more will come; the server would refuse anyway
  const payload = { pid: w.pid, children: w.children };
  if (w.lastT !== undefined) payload.since = w.lastT;
  try {
    const resp = await request("watch", payload);
    if (state.watches.get(w.key) !== w) return; // removed while the ack was in flight
    confirmWatch(w, resp.process, resp.samples);
  } catch (err) {
    if (state.watches.get(w.key) !== w) return;
    if (w.confirmed && GONE.has(err.code)) {
      // It died while we were away: keep its history on screen.
      markExited(w, w.lastT ?? Date.now() / 1000);
      return;
    }
    showError(err, `watch ${w.pid}`);
    // A pid that never worked (bad pid in URL, typo): drop it, keep the page going.
    if (!w.confirmed) dropWatch(w);
  }
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
  if (socket && socket.connected && w.confirmed && !w.exited) {
    try { await request("unwatch", { pid: w.pid, children: w.children }); } catch (err) {
      if (!GONE.has(err.code)) showError(err, `unwatch ${w.pid}`);
    }
  }
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
  socket.on("system", (sys) => emit("system", sys));
  socket.on("run", (run) => emit("run-event", run));
  // The server's growth verdicts, one argument per watched target, about once a second.
  socket.on("growth", (...items) => items.forEach(onGrowth));
  socket.on("mark", (mark) => emit("mark", mark));
  socket.on("runs_cleared", (msg) => emit("runs-cleared", msg?.run_ids || []));
}
