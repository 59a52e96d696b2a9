// The scenario catalogue: one card per leak pattern with its explanation, a runtime
// picker, its parameters, the run / compare buttons, the leaky/fixed code side by side and
// the speaker notes on demand. The card last used is the selected one (key `c` compares it).

import { api } from "./api.js";
import { button, el, emptyNote } from "./dom.js";
import { codePanel } from "./code-panel.js";
import { runtimeLabel } from "./format.js";
import { showError } from "./toast.js";

const NUMBER_TYPES = new Set(["int", "float", "number"]);
let selected = null; // the selected card (an <article>)

function choose(card) {
  if (selected === card) return;
  selected?.classList.remove("selected");
  selected?.removeAttribute("aria-current");
  selected = card;
  card.classList.add("selected");
  card.setAttribute("aria-current", "true");
}

/** Compare the selected scenario (with its card's runtime and parameters), as its button does. */
export function compareSelected() {
  const btn = selected?.querySelector('[data-action="compare"]');
  if (btn && !btn.disabled) btn.click();
  return !!btn;
}

function given(v) { return v !== undefined && v !== null; }

/** The input for one catalogue parameter, typed and bounded as the server will check it. */
function paramInput(p, id) {
  const props = { id, "data-name": p.name, "data-type": p.type };
  if (p.type === "bool") return el("input", { type: "checkbox", checked: !!p.default, ...props });
  if (!NUMBER_TYPES.has(p.type)) return el("input", { type: "text", value: p.default ?? "", ...props });
  return el("input", {
    type: "number", value: p.default ?? "", step: p.type === "int" ? "1" : "any",
    min: p.min, max: p.max, ...props, // el() leaves out a bound the catalogue does not give
  });
}

function readInput(i) {
  const t = i.dataset.type;
  if (t === "bool") return i.checked;
  if (t === "int") return parseInt(i.value, 10);
  if (NUMBER_TYPES.has(t)) return parseFloat(i.value);
  return i.value;
}

/** The parameter form: {el, read()}; read() is null (and the browser says why) when invalid. */
function paramsForm(sc) {
  const inputs = [];
  const form = el("div", { class: "params" });
  for (const p of sc.params || []) {
    if (p.hidden) continue; // internal knobs: the server applies their defaults
    const input = paramInput(p, `p-${sc.id}-${p.name}`);
    inputs.push(input);
    const range = given(p.min) && given(p.max) ? ` (${p.min}–${p.max})` : "";
    form.append(el("label", { htmlFor: input.id, class: "param", title: p.help || "" },
      el("span", { class: "param-name", text: p.name.replace(/_/g, " ") }),
      input,
      el("span", { class: "param-unit", text: `${p.unit || ""}${range}` }),
      p.help ? el("span", { class: "param-help", text: p.help }) : null));
  }
  function read() {
    const out = {};
    for (const i of inputs) {
      if (!i.checkValidity()) { i.reportValidity(); return null; }
      out[i.dataset.name] = readInput(i);
    }
    return out;
  }
  return { el: form, read };
}

/** `launch(sc, {variant, runtime, params})` starts runs; variant null compares both. Without
 *  `launch` (the audience) the card explains and shows the code, with nothing to start. */
function renderCard(sc, launch) {
  const runtimes = sc.runtimes || [];
  const firstOk = runtimes.find((r) => r.available) || runtimes[0];
  const select = el("select", { class: "runtime", "aria-label": "Runtime" },
    ...runtimes.map((r) => el("option", {
      value: r.id, disabled: !r.available,
      text: `${runtimeLabel(r.id)}${r.available ? "" : " (unavailable)"}`,
    })));
  if (firstOk) select.value = firstOk.id;
  const unavailable = runtimes.filter((r) => !r.available);
  const reasons = unavailable.length
    ? el("ul", { class: "runtime-reasons" },
      ...unavailable.map((r) => el("li", { text: `${runtimeLabel(r.id)}: ${r.reason || "not available"}` })))
    : null;
  const params = paramsForm(sc);
  const code = codePanel(sc.code, sc.notes);
  select.addEventListener("change", () => code.show(select.value));
  code.show(select.value);

  const noRuntime = !runtimes.some((r) => r.available);
  const buttons = el("div", { class: "run-buttons" });
  const busy = (on) => {
    for (const b of buttons.querySelectorAll("[data-action^='run-'], [data-action='compare']")) b.disabled = on || noRuntime;
  };
  async function go(variant) {
    const body = { variant, runtime: select.value, params: params.read() };
    if (!body.params) return;
    busy(true);
    try { await launch(sc, body); } finally { busy(false); }
  }
  buttons.append(
    button({ class: "leaky", text: "Run leaky", "data-action": "run-leaky", onclick: () => go("leaky") }),
    button({ class: "fixed", text: "Run fixed", "data-action": "run-fixed", onclick: () => go("fixed") }),
    button({ class: "primary", text: "Compare", "data-action": "compare", onclick: () => go(null) }));
  busy(false);
  if (code.notes) {
    const notes = button({
      class: "ghost notes-toggle", text: "Notes", "aria-pressed": "false", "data-action": "notes",
      title: "Speaker notes: what leaks, why, the fix, what to look at on the chart",
      onclick: () => notes.setAttribute("aria-pressed", String(code.toggleNotes())),
    });
    buttons.append(notes);
  }

  const card = el("article", { class: "scenario", "data-scenario": sc.id },
    el("h3", { text: sc.title }),
    sc.summary ? el("p", { class: "summary", text: sc.summary }) : null,
    el("dl", { class: "explain" },
      el("dt", { text: "What leaks" }), el("dd", { text: sc.leaks || "" }),
      el("dt", { text: "Why" }), el("dd", { text: sc.why || "" }),
      el("dt", { text: "The fix" }), el("dd", { text: sc.fix || "" })),
    launch && el("div", { class: "scenario-controls presenter-only live-only" },
      el("label", { class: "param" }, el("span", { class: "param-name", text: "runtime" }), select),
      reasons,
      params.el,
      buttons),
    code.el);
  card.addEventListener("pointerdown", () => choose(card));
  card.addEventListener("focusin", () => choose(card));
  return card;
}

/** Load the catalogue into `container`, one card per scenario. */
export async function loadCatalogue(container, launch) {
  try {
    const data = await api("/api/scenarios");
    const list = data.scenarios || [];
    container.replaceChildren(...list.map((sc) => renderCard(sc, launch)));
    if (!list.length) container.append(emptyNote("No scenarios available."));
    else choose(container.querySelector("article.scenario"));
  } catch (err) {
    container.replaceChildren(emptyNote("Could not load scenarios."));
    showError(err, "scenarios");
  }
}
