// Pure helpers: byte formatting, rates, least-squares fit. No DOM, no state.

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

/** Growth in bytes/second -> "+12.3 MiB/min" (per minute reads better for slow leaks). */
export function formatRate(bytesPerSec) {
  if (bytesPerSec === null || !Number.isFinite(bytesPerSec)) return "–";
  const perMin = (bytesPerSec * 60) / MIB;
  const sign = perMin > 0 ? "+" : "";
  return `${sign}${perMin.toFixed(Math.abs(perMin) >= 100 ? 0 : 1)} MiB/min`;
}

/** Bytes/second -> MiB/minute, the unit the growth thresholds are expressed in. */
export function mibPerMin(bytesPerSec) {
  return (bytesPerSec * 60) / MIB;
}

/**
 * Ordinary least-squares slope of ys over xs (units of y per unit of x).
 * Returns null with fewer than 2 points or no spread in x: a rate needs a span of time.
 */
export function linearFit(xs, ys) {
  const n = xs.length;
  if (n < 2) return null;
  // Centre x first: epoch seconds squared lose precision in float64.
  const x0 = xs[0];
  let sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (let i = 0; i < n; i++) {
    const x = xs[i] - x0, y = ys[i];
    sx += x; sy += y; sxx += x * x; sxy += x * y;
  }
  const den = n * sxx - sx * sx;
  if (den <= 0) return null;
  const slope = (n * sxy - sx * sy) / den;
  return { slope, intercept: (sy - slope * sx) / n };  // intercept is at xs[0]
}

/**
 * Slope (bytes/s) of `metric` over the last `seconds` of a sample list (sorted by t).
 * Only samples that carry the metric count: detail keys appear about once a second.
 * Samples before `minT` are ignored (e.g. a program's start-up ramp).
 */
export function recentSlope(samples, metric, seconds, now, minT = -Infinity) {
  const end = now ?? (samples.length ? samples[samples.length - 1].t : 0);
  const xs = [], ys = [];
  for (let i = samples.length - 1; i >= 0; i--) {
    const s = samples[i];
    if (s.t < end - seconds || s.t < minT) break;
    if (s[metric] !== undefined) { xs.push(s.t); ys.push(s[metric]); }
  }
  // Need a few seconds of span, or the slope of two jittery points dominates.
  if (xs.length < 3 || xs[0] - xs[xs.length - 1] < Math.min(5, seconds / 2)) return null;
  xs.reverse(); ys.reverse();
  const fit = linearFit(xs, ys);
  return fit ? fit.slope : null;
}

/** Epoch seconds -> value for a Plotly date axis. Plotly treats numbers as UTC, so shift to local. */
export function toPlotTime(t) {
  const ms = t * 1000;
  return ms - new Date(ms).getTimezoneOffset() * 60000;
}

/** Inverse of toPlotTime, for the test hook. */
export function fromPlotTime(x) {
  const guess = x + new Date(x).getTimezoneOffset() * 60000;
  return guess / 1000;
}

/** "12:03:04" in local time, for lists. */
export function formatClock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
}

/** Small debounce: the picker must not fire a request per keystroke. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
