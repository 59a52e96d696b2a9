// Process picker: a drawer over the chart's left edge, folded away until the Processes
// button opens it. Type to filter (debounced GET /api/processes), rows sorted by RSS with
// a shortened command line (every Python process is "python3" by name), click a row to
// watch it. While open, the list (and its RSS column) refreshes every 2 s.
// A tree is watched from a process's own line ("with children"), not from here; a replay's
// list (GET /api/processes answers from the recording) has a row per recorded series.

import { api } from "./api.js";
import { button, el } from "./dom.js";
import { debounce, formatBytes, formatClock, shortCommand } from "./format.js";
import { state } from "./state.js";
import { showError } from "./toast.js";

const REFRESH_MS = 2000;

export function initPicker({ onPick }) {
  const input = document.getElementById("picker-q");
  const list = document.getElementById("picker-list");
  const count = document.getElementById("picker-count");
  const drawer = document.getElementById("picker");
  const toggle = document.getElementById("picker-toggle");
  let seq = 0; // answers can arrive out of order: only the newest query is shown
  let timer = null;

  function setOpen(open) {
    drawer.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", String(open));
    clearInterval(timer);
    timer = null;
    if (!open) return;
    refresh();
    input.focus();
    timer = setInterval(() => { if (!list.matches(":hover")) refresh(); }, REFRESH_MS); // rows stay put under the pointer
  }
  toggle.addEventListener("click", () => setOpen(!drawer.classList.contains("open")));
  document.getElementById("picker-close").addEventListener("click", () => setOpen(false));
  drawer.addEventListener("keydown", (e) => { if (e.key === "Escape") { setOpen(false); toggle.focus(); } });

  async function refresh() {
    const q = input.value.trim();
    const mine = ++seq;
    list.setAttribute("aria-busy", "true");
    try {
      const data = await api(`/api/processes?q=${encodeURIComponent(q)}&limit=50`);
      if (mine !== seq) return;
      render(data.processes || []);
    } catch (err) {
      if (mine === seq) showError(err, "process list");
    } finally {
      if (mine === seq) list.removeAttribute("aria-busy");
    }
  }

  function render(procs) {
    count.textContent = `${procs.length} process${procs.length === 1 ? "" : "es"}`;
    list.replaceChildren(...procs.map((p) => {
      // A replay lists recorded series: a tree's total is its own row (`children`), and a
      // process not alive at the cursor has no RSS there (null).
      const children = !!p.children;
      const watching = [...state.watches.values()].some((w) => w.pid === p.pid && w.children === children);
      const span = p.first_t ? ` (recorded ${formatClock(p.first_t)}–${formatClock(p.last_t)})` : "";
      const btn = button({
        class: `picker-row${watching ? " watching" : ""}`, "data-pid": p.pid, "data-children": children ? "1" : "0",
        title: (p.cmdline || p.name || "") + span,
        onclick: () => { onPick(p.pid, children); btn.classList.add("watching"); },
      },
      el("span", { class: "p-name" },
        el("span", { class: "p-cmd", text: shortCommand(p.cmdline, p.name) + (children ? " +children" : "") })),
      el("span", { class: "p-pid", text: p.pid }),
      el("span", { class: "p-user", text: p.user ?? "" }),
      el("span", { class: "p-rss", text: formatBytes(p.rss) }));
      return el("li", {}, btn);
    }));
  }

  const later = debounce(refresh, 250);
  input.addEventListener("input", later);
  // Enter on a filter that matches exactly one process watches it: quick from the keyboard.
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    const rows = list.querySelectorAll(".picker-row");
    if (rows.length === 1) rows[0].click();
    else if (/^\d+$/.test(input.value.trim())) onPick(Number(input.value.trim()));
  });
  document.getElementById("picker-refresh").addEventListener("click", refresh);
  // No list until the drawer opens: most visits never open it (and it is ~30 kB of JSON).
  return { setOpen };
}
