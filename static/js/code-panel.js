// The leaky and fixed code of a scenario side by side, for the runtime picked on its card,
// and the speaker notes (what leaks, why, the fix, what to look at) beside them on demand.

import { el } from "./dom.js";

const NO_CODE = "(no code for this runtime)";
const NOTE_TITLES = [["what", "What leaks"], ["why", "Why"], ["fix", "The fix"], ["look", "Look at"]];

function notesAside(notes) {
  const items = NOTE_TITLES.filter(([k]) => notes && notes[k]);
  if (!items.length) return null;
  return el("aside", { class: "notes", hidden: true, "aria-label": "Speaker notes" },
    el("h4", { text: "Speaker notes" }),
    el("dl", {}, ...items.flatMap(([k, title]) => [el("dt", { text: title }), el("dd", { text: notes[k] })])));
}

/**
 * `code` is the catalogue's {runtime: {leaky, fixed, path}}, `notes` its speaker notes
 * ({what, why, fix, look}, optional). Returns {el, show(runtime), notes (aside or null),
 * toggleNotes(on?)}.
 */
export function codePanel(code = {}, notes = null) {
  const leaky = el("code");
  const fixed = el("code");
  const path = el("span", { class: "code-path" });
  const listing = (variant, body) =>
    el("figure", { class: `code ${variant}` }, el("figcaption", { text: variant }), el("pre", {}, body));
  const aside = notesAside(notes);
  const panel = el("div", { class: "code-panel" },
    el("div", { class: "code-row" },
      el("div", { class: "code-pair" }, listing("leaky", leaky), listing("fixed", fixed)),
      aside),
    path);

  function show(runtime) {
    const c = code[runtime] || {};
    leaky.textContent = c.leaky || NO_CODE;
    fixed.textContent = c.fixed || NO_CODE;
    path.textContent = c.path || "";
  }

  function toggleNotes(on) {
    if (!aside) return false;
    aside.hidden = on === undefined ? !aside.hidden : !on;
    panel.classList.toggle("with-notes", !aside.hidden);
    return !aside.hidden;
  }

  return { el: panel, show, notes: aside, toggleNotes };
}
