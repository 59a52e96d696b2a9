// The page's DOM helpers. Every module builds its elements with el(), so there is one
// place that knows how a prop becomes an attribute, a property or a listener.

/**
 * el("button", {type: "button", class: "small", text: "Stop", "data-action": "stop",
 *   onclick: fn}, ...children) -> element.
 * Props: `class` and `text` set className and textContent; `role`, `data-*` and `aria-*`
 * are attributes (no property of that name everywhere); `on<event>` adds a listener; anything
 * else is set as a property (type, value, title, disabled, htmlFor, ...). Null/undefined
 * props and children are skipped, so optional parts can be written inline.
 */
export function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "role" || k.startsWith("data-") || k.startsWith("aria-")) e.setAttribute(k, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

/** The "nothing here yet" paragraph used by every list on the page. */
export function emptyNote(text) {
  return el("p", { class: "empty", text });
}

/** A <button type="button"> (never a form submit); props as for el(). */
export function button(props, ...kids) {
  return el("button", { type: "button", ...props }, ...kids);
}
