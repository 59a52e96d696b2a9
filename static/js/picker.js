// Process picker: type to filter (debounced GET /api/processes), rows sorted by RSS,
// click a row to watch it. "Include children" applies to watches added from here.

import { api } from "./api.js";
import { debounce, formatBytes } from "./format.js";
import { state } from "./state.js";
import { showError } from "./toast.js";

export function initPicker({ onPick }) {
  const input = document.getElementById("picker-q");
  const children = document.getElementById("picker-children");
  const list = document.getElementById("picker-list");
  const count = document.getElementById("picker-count");
  let seq = 0; // answers can arrive out of order: only the newest query is shown

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
    list.replaceChildren();
    count.textContent = `${procs.length} process${procs.length === 1 ? "" : "es"}`;
    for (const p of procs) {
      const li = document.createElement("li");
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "picker-row";
      btn.dataset.pid = p.pid;
      btn.title = p.cmdline || p.name;
      const watching = [...state.watches.values()].some((w) => w.pid === p.pid);
      if (watching) btn.classList.add("watching");
      const name = document.createElement("span");
      name.className = "p-name";
      name.textContent = p.name;
      const pid = document.createElement("span");
      pid.className = "p-pid";
      pid.textContent = p.pid;
      const user = document.createElement("span");
      user.className = "p-user";
      user.textContent = p.user ?? "";
      const rss = document.createElement("span");
      rss.className = "p-rss";
      rss.textContent = formatBytes(p.rss);
      btn.append(name, pid, user, rss);
      btn.addEventListener("click", () => {
        onPick(p.pid, children.checked);
        btn.classList.add("watching");
      });
      li.appendChild(btn);
      list.appendChild(li);
    }
  }

  const later = debounce(refresh, 250);
  input.addEventListener("input", later);
  // Enter on a filter that matches exactly one process watches it: quick from the keyboard.
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    const rows = list.querySelectorAll(".picker-row");
    if (rows.length === 1) rows[0].click();
    else if (/^\d+$/.test(input.value.trim())) onPick(Number(input.value.trim()), children.checked);
  });
  document.getElementById("picker-refresh").addEventListener("click", refresh);
  refresh();
  return { refresh };
}
