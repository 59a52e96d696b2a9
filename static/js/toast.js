// Visible, dismissable messages in the bottom-left corner, over the chart's axis and never
// over the numbers (system strip, verdicts, runs). Errors never fail silently: every failed
// ack or REST call ends up here, said in words (what happened, what to do), with the
// server's code kept as data-code and its message as the detail.

import { button, el } from "./dom.js";

const MAX_TOASTS = 4;

// One sentence per error code of docs/architecture.md; an unknown code shows the server's message.
const SAY = {
  bad_request: "The request was not understood. Check the values you entered.",
  bad_pid: "That process id cannot be used here (not a number, or not one of this run's processes). Pick one from the list.",
  kernel_thread: "That is a kernel thread: it has no user memory to plot. Pick another process.",
  bad_params: "A scenario setting is out of range. Fix the highlighted value and try again.",
  unknown_event: "The page and the server disagree about a message. Reload the page.",
  access_denied: "That process belongs to another user. Run memdash as that user to watch it.",
  bad_recording: "That file is not a memdash recording.",
  recording_too_new: "That recording was written by a newer memdash. Update memdash to open it.",
  bad_host: "memdash does not answer to this address. Open the link memdash printed (on its own machine: 127.0.0.1).",
  bad_origin: "memdash refused a request from a page it did not serve. Open memdash's own page.",
  bad_token: "This presenter link is not valid for this start of memdash. Use the presenter link memdash printed last.",
  presenter_only: "Only the presenter can do that. You are following along read-only.",
  not_shown: "The presenter is not showing that process, so it cannot be watched from here.",
  not_found: "Not found on the server. Reload the page; the server may be newer or older.",
  no_such_process: "No such process: it has exited, or the id is wrong. Pick one from the process list.",
  unknown_scenario: "The server does not know that scenario. Reload the page.",
  unknown_run: "The server no longer knows that run. Reload the runs list.",
  not_watching: "That process was not being watched.",
  method_not_allowed: "The server refused that action. Reload the page.",
  zombie: "The process has exited and waits to be reaped; there is nothing left to measure.",
  process_gone: "The process exited while it was being read.",
  run_ended: "That run has already ended. Start it again to use the tool.",
  recording_locked: "Another memdash is recording to that file. Stop it or pick another file.",
  replaying: "This is a recording (memdash open): it is read-only, nothing can be started, stopped or measured.",
  unsupported_media_type: "The server refused a request that was not JSON. Reload the page.",
  too_many_watches: "This page already watches as many processes as it may. Remove one first (×).",
  too_many_runs: "Too many runs at once. Stop some (press s to stop all), then try again.",
  too_many_targets: "memdash already samples as many processes as it can for everyone together. Remove a watch first.",
  too_many_viewers: "The room is full: memdash already has as many viewers as it allows. This page tries again by itself in a few seconds.",
  rate_limited: "Too many requests in a short time. Wait a moment, then try again.",
  internal: "memdash hit a bug. The server log has the details; try again.",
  unavailable: "Something memdash needs is missing or did not answer (node, redis, a worker).",
  network: "The memdash server cannot be reached. Check that it is still running.",
  timeout: "The server did not answer in time. Try again.",
};

/** What a person reads for an error: {text, detail}. */
export function errorWords(code, message) {
  const text = SAY[code] || message || "Something went wrong.";
  return { text, detail: SAY[code] && message && message !== text ? message : "" };
}

function container() {
  let box = document.getElementById("toasts");
  if (!box) {
    box = el("div", { id: "toasts", "aria-live": "assertive" });
    document.body.appendChild(box);
  }
  return box;
}

/** Show an error. `err` is an ApiError, an Error, or {code, message}. */
export function showError(err, context = "") {
  const code = err && err.code ? err.code : "error";
  const message = err && err.message ? err.message : String(err);
  const words = errorWords(code, message);
  const text = `${context ? context + ": " : ""}${words.text}`;
  const box = container();
  // The same failure repeated (e.g. several watches failing together) shows once.
  for (const t of box.children) if (t.dataset.text === text) return t;
  const toast = el("div", { class: "toast toast-error", role: "alert", "data-code": code, "data-text": text },
    el("div", { class: "toast-msg" },
      el("span", { text }),
      words.detail ? el("small", { class: "toast-detail", text: words.detail }) : null),
    button({ class: "toast-close", title: "Dismiss", "aria-label": "Dismiss", text: "×", onclick: () => toast.remove() }));
  box.appendChild(toast);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  return toast;
}

/** A short, self-dismissing note (not an error), e.g. "All runs stopped". */
export function showInfo(text, ms = 4000) {
  const toast = el("div", { class: "toast toast-info", role: "status", text });
  container().appendChild(toast);
  setTimeout(() => toast.remove(), ms);
  return toast;
}
