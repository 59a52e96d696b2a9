// Visible, dismissable error banners (top right). Errors never fail silently:
// every failed ack or REST call ends up here with its server code and message.

const MAX_TOASTS = 5;

function container() {
  let el = document.getElementById("toasts");
  if (!el) {
    el = document.createElement("div");
    el.id = "toasts";
    el.setAttribute("aria-live", "assertive");
    document.body.appendChild(el);
  }
  return el;
}

/** Show an error. `err` is an ApiError, an Error, or {code, message}. */
export function showError(err, context = "") {
  const code = err && err.code ? err.code : "error";
  const message = err && err.message ? err.message : String(err);
  const text = `${context ? context + ": " : ""}${message}`;
  const box = container();
  // The same failure repeated (e.g. several watches failing together) shows once.
  for (const t of box.children) if (t.dataset.text === text) return t;
  const toast = document.createElement("div");
  toast.className = "toast toast-error";
  toast.setAttribute("role", "alert");
  toast.dataset.code = code;
  toast.dataset.text = text;
  const msg = document.createElement("span");
  msg.className = "toast-msg";
  msg.textContent = text;
  const codeEl = document.createElement("code");
  codeEl.textContent = code;
  const close = document.createElement("button");
  close.className = "toast-close";
  close.type = "button";
  close.title = "Dismiss";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => toast.remove());
  toast.append(codeEl, msg, close);
  box.appendChild(toast);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  return toast;
}

/** A short, self-dismissing note (not an error), e.g. "3 runs stopped". */
export function showInfo(text, ms = 4000) {
  const toast = document.createElement("div");
  toast.className = "toast toast-info";
  toast.setAttribute("role", "status");
  toast.textContent = text;
  container().appendChild(toast);
  setTimeout(() => toast.remove(), ms);
  return toast;
}
