// Keep what you saw: the chart as a PNG (Plotly's own downloadImage), the session's exports
// (CSV, JSON, HTML report: links to /api/export, shown while the session is recorded,
// hello.recording, or replayed: memdash open exports the file it shows), the tool artefacts kept with the session (GET /api/artefacts: name, size,
// path, a download link), and a warning everyone sees when recording stopped (a full disk:
// the `recording` event or hello.recording.error). Exports and artefacts are the presenter's
// (those routes are not open to the audience); the PNG is anyone's own chart.

import { api } from "./api.js";
import { el, emptyNote } from "./dom.js";
import { formatBytes } from "./format.js";
import { isPresenter, on } from "./state.js";

/** `chartEl`: the Plotly chart's element. */
export function initKeep(chartEl) {
  const exportBox = document.getElementById("export");
  const warning = document.getElementById("recording-warning");
  const list = document.getElementById("artefacts");
  const where = document.getElementById("recording-path");
  const kept = document.getElementById("kept");

  document.getElementById("png")?.addEventListener("click", () => {
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    window.Plotly.downloadImage(chartEl, { format: "png", filename: `memdash-${stamp}`, width: chartEl.clientWidth, height: chartEl.clientHeight });
  });

  /** `replaying`: a recording is open (memdash open): its artefacts and exports are offered. */
  function recording(rec, replaying = false) {
    const on = !!rec;
    if (exportBox) exportBox.hidden = !(on || replaying) || !isPresenter();
    if (kept) kept.hidden = !(on || replaying) || !isPresenter();
    if (where) where.textContent = rec?.path ? `Recorded to ${rec.path}` : "";
    if (warning) {
      warning.hidden = !rec?.error;
      warning.textContent = rec?.error ? `⚠ Recording stopped: ${rec.error}. The dashboard goes on; what was written is kept.` : "";
      warning.title = rec?.path || "";
    }
  }

  async function artefacts() {
    if (!list || !isPresenter()) return;
    let found = [];
    try { found = (await api("/api/artefacts")).artefacts || []; } catch { return; }
    list.replaceChildren(...(found.length ? found.map((a) => el("li", { class: "artefact", "data-name": a.name },
      el("a", { href: `/api/artefacts/${encodeURIComponent(a.name)}`, download: a.name, text: `⬇ ${a.name}` }),
      el("span", { class: "size", text: formatBytes(a.size) }),
      el("code", { class: "path", text: a.path }))) : [emptyNote("No artefacts yet: heap snapshots and leak reports are kept here.")]));
  }

  on("hello", (hello) => { recording(hello.recording ?? null, !!hello.replay); artefacts(); });
  on("recording", (rec) => recording(rec));
  on("artefacts-changed", artefacts);
  recording(null);
}
