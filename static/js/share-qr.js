// "Show QR" (the presenter of a shared room): the audience URL and its QR code full-screen,
// from GET /api/share (the server draws the code with segno). A click or Escape closes it.

import { api } from "./api.js";
import { el } from "./dom.js";
import { showError } from "./toast.js";

/** The server's inline SVG as a scalable element (its size is the dialog's business). */
function scalable(svgText) {
  const t = document.createElement("template");
  t.innerHTML = svgText;
  const svg = t.content.querySelector("svg");
  // Only a drawing: the server's segno output has no script, and none is let through.
  if (!svg || t.content.querySelector("script, foreignObject, iframe")) return null;
  const w = svg.getAttribute("width"), h = svg.getAttribute("height");
  if (!svg.getAttribute("viewBox") && w && h) svg.setAttribute("viewBox", `0 0 ${parseFloat(w)} ${parseFloat(h)}`);
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code of the audience link");
  return svg;
}

export function initShareQr() {
  const open = document.getElementById("share-qr");
  if (!open) return;
  const dialog = el("dialog", { id: "qr", class: "qr", "aria-label": "Audience link" });
  dialog.addEventListener("click", () => dialog.close());
  document.body.append(dialog);

  open.addEventListener("click", async () => {
    open.disabled = true;
    try {
      const share = await api("/api/share");
      const code = scalable(share.qr_svg || "");
      dialog.replaceChildren(
        el("p", { class: "qr-title", text: "Follow along on your laptop or phone:" }),
        code ? el("div", { class: "qr-code" }, code) : null,
        el("p", { class: "qr-url", text: share.audience }),
        el("p", { class: "muted", text: "Click or press Escape to close." }));
      dialog.showModal();
    } catch (err) {
      showError(err, "show the audience link");
    } finally {
      open.disabled = false;
    }
  });
}
