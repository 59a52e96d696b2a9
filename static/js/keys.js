// Keyboard shortcuts for a speaker at a projector: Space pauses, c compares the selected
// scenario, s stops all runs, p toggles presenter mode, ? lists the keys. A key typed into
// a text field or a select is typing, never a shortcut; Space on a focused button presses
// that button, as it always does. An audience page has no c or s (it changes nothing).

import { button, el } from "./dom.js";
import { isPresenter } from "./state.js";

const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);
const OWN_SPACE = new Set(["BUTTON", "A", "SUMMARY"]);

function isTyping(target) {
  return !!target && (TYPING.has(target.tagName) || target.isContentEditable);
}

/** `actions`: {pause(), compare(), stopAll(), present()}; returns {help} (the dialog). */
export function initKeys(actions) {
  const KEYS = [
    [" ", "Space", "pause or resume the chart", actions.pause],
    ...(isPresenter() ? [
      ["c", "c", "compare the selected scenario (leaky and fixed)", actions.compare],
      ["s", "s", "stop all leak-lab runs", actions.stopAll],
    ] : []),
    ["p", "p", "presenter mode: larger text, no picker", actions.present],
    ["?", "?", "show these keys", () => toggleHelp()],
  ];
  const help = el("dialog", { id: "keys-help", class: "keys-help", "aria-label": "Keyboard shortcuts" },
    el("h2", { text: "Keyboard shortcuts" }),
    el("dl", {}, ...KEYS.flatMap(([, shown, what]) => [el("dt", {}, el("kbd", { text: shown })), el("dd", { text: what })])),
    el("p", { class: "muted", text: "Keys typed into a text field or a list are typing, not shortcuts." }),
    button({ text: "Close", onclick: () => help.close() }));
  document.body.append(help);

  function toggleHelp() {
    if (help.open) help.close();
    else help.showModal();
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || e.defaultPrevented) return;
    if (isTyping(e.target)) return;
    if (help.open && e.key !== "?") return; // the dialog has the keyboard (Escape closes it)
    if (e.key === " " && OWN_SPACE.has(e.target?.tagName)) return;
    const hit = KEYS.find(([key]) => key === e.key.toLowerCase() || key === e.key);
    if (!hit) return;
    e.preventDefault(); // Space would scroll the page
    hit[3]();
  });

  return { help, toggleHelp };
}
