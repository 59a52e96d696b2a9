// Pure helpers: byte formatting, the server's growth verdicts in words, command lines.
// No DOM, no state. The page estimates no growth of its own: the server's growth
// estimator (dashboard/growth.py) is the one source.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export const MIB = 1024 * 1024;

/** 123456789 -> "117.7 MiB". Binary units, because the kernel counts pages, not SI megabytes. */
export function formatBytes(n) {
  if (n === undefined || n === null || !Number.isFinite(n)) return "–";
  const sign = n < 0 ? "-" : "";
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  const digits = i === 0 ? 0 : v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${sign}${v.toFixed(digits)} ${UNITS[i]}`;
}

/** The unit an axis showing values up to `maxBytes` reads best in: {name, size}. */
export function axisUnit(maxBytes) {
  let i = 1; // KiB at least: a byte axis is never what a person wants to read
  while (i < 3 && maxBytes >= 1024 ** (i + 1)) i++;
  return { name: UNITS[i], size: 1024 ** i };
}

/** Bytes per minute -> "+12.3 MiB/min" (per minute reads better for slow leaks). */
export function formatRate(bytesPerMin) {
  if (bytesPerMin === null || bytesPerMin === undefined || !Number.isFinite(bytesPerMin)) return "–";
  return `${bytesPerMin > 0 ? "+" : ""}${formatBytes(bytesPerMin)}/min`;
}

const VERDICT_WORDS = {
  warming_up: "warming up",
  stable: "stable",
  growing: "growing",
  shrinking: "shrinking",
};

/**
 * The server's growth object {bytes_per_min, verdict, window_s} (or null) in words:
 * {text, cls, title}; cls is `verdict-<verdict>` (grey, green, red, blue in the CSS).
 */
export function describeGrowth(growth) {
  if (!growth || !VERDICT_WORDS[growth.verdict]) return { text: "–", cls: "verdict-none", title: "no verdict yet" };
  const word = VERDICT_WORDS[growth.verdict];
  const rate = growth.verdict === "warming_up" ? "" : ` ${formatRate(growth.bytes_per_min)}`;
  const span = Number.isFinite(growth.window_s) ? ` over the last ${Math.round(growth.window_s)} s` : "";
  return { text: `${word}${rate}`, cls: `verdict-${growth.verdict}`, title: `${word}${rate}${span} (the server's estimate)` };
}

/** "12:03:04" in local time, for lists. */
export function formatClock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
}

const RUNTIME_LABELS = { python: "Python", node: "Node.js" };

/** "node" -> "Node.js": a scenario runtime as people write it. */
export function runtimeLabel(id) {
  return RUNTIME_LABELS[id] || id;
}

const MAX_COMMAND = 48;

/**
 * "/usr/bin/python3 -m http.server 8000" -> "python3 -m http.server 8000": the program's
 * base name and its arguments (paths shortened to their base name), cut at ~48 characters.
 * Every Python process is "python3" by name; the arguments are what tells them apart.
 */
export function shortCommand(cmdline, name = "") {
  const argv = String(cmdline || "").trim().split(/\s+/).filter(Boolean);
  if (!argv.length) return name;
  const base = (a) => (a.includes("/") && !a.endsWith("/") ? a.slice(a.lastIndexOf("/") + 1) : a);
  const text = argv.map((a, i) => (i === 0 || a.startsWith("/") ? base(a) : a)).join(" ");
  return text.length > MAX_COMMAND ? `${text.slice(0, MAX_COMMAND - 1)}…` : text;
}

/** Small debounce: the picker must not fire a request per keystroke. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
