// A tool's answer as the results panel shows it: plain data {title, hint, tables, download?}
// made from the server's JSON (the live REST answer, or the same answer kept in a recording
// and sent as `tool_result` while a replay passes it). One place words each tool's result,
// so a replayed result reads as it did live.

import { formatBytes, formatClock } from "./format.js";
import { runById, runLabel, state, watchKey } from "./state.js";

export const MEASURE_SECONDS = 5;

export function signed(n) { return (n > 0 ? "+" : "") + formatBytes(n); }

/** A leak report (tracemalloc or V8's sampling profiler) of `who` ("node (123)"). */
export function leakResult(r, who) {
  const secs = r.seconds ?? MEASURE_SECONDS;
  const rows = (r.top || []).map((x) => [
    `${x.file}:${x.line}${x.function ? ` ${x.function}` : ""}`, signed(x.size_diff),
    `${x.count_diff > 0 ? "+" : ""}${x.count_diff ?? ""}`, formatBytes(x.size), String(x.count ?? "")]);
  const moved = r.rss_diff !== undefined ? `RSS ${signed(r.rss_diff)}, heap ${signed(r.heap_diff)} over ${secs} s. ` : "";
  return {
    title: `Where ${who} allocates – ${r.method || "tracemalloc"}, ${secs} s diff`,
    hint: r.hint || `${moved}Lines that allocated the most new memory over ${secs} seconds. The top line is usually the leak.`,
    tables: [{ headers: ["Source line", "Size diff", "Count diff", "Size", "Count"], rows, empty: "No allocations grew." }],
  };
}

/** A heap snapshot of `who`; `download` its URL (null: none to offer). */
export function snapshotResult(r, who, download, kept = false) {
  return {
    title: `Heap snapshot of ${who}`,
    download,
    hint: `Open it in Chrome DevTools → Memory → Load, then sort by Retained Size.${kept ? " It is kept with the session (Kept, below)." : ""}`,
  };
}

/** An smaps diff (GET /mappings) of `who`. */
export function mappingsResult(r, who) {
  const secs = r.seconds ?? MEASURE_SECONDS;
  const groups = (r.groups || []).map((g) => [g.kind, formatBytes(g.rss_before), formatBytes(g.rss_after), signed(g.diff)]);
  const top = (r.top || []).filter((m) => m.diff).map((m) => [m.name || "(anonymous)", m.kind, signed(m.diff), formatBytes(m.rss_after)]);
  return {
    title: `Mappings diff of ${who} – smaps, ${secs} s`,
    hint: `Resident memory by mapping kind before and after ${secs} seconds. Growth in heap/anonymous is allocator memory; file growth is usually harmless page cache.`,
    tables: [
      { headers: ["Kind", "RSS before", "RSS after", "Diff"], rows: groups },
      ...(top.length ? [{ title: "Mappings that grew most", headers: ["Mapping", "Kind", "Diff", "RSS after"], rows: top }] : []),
    ],
  };
}

/** Who a recorded result examined, in the words the live panel used. */
function recordedWho({ run_id: runId, pid }) {
  const run = runId ? runById(runId) : null;
  if (run) return `${runLabel(run)} (pid ${pid ?? run.pid})`;
  const w = pid ? state.watches.get(watchKey(pid, false)) : null;
  return w ? w.label : `pid ${pid ?? "?"}`;
}

/** A replay's `tool_result {t, run_id, pid, kind, result, artefact}` as a panel result. */
export function recordedResult(tr) {
  const r = tr.result || {};
  const who = recordedWho({ run_id: tr.run_id ?? r.run_id, pid: tr.pid ?? r.pid });
  const at = ` · at ${formatClock(tr.t)}`;
  let out;
  if (tr.kind === "leak_report") out = leakResult(r, who);
  else if (tr.kind === "heap_snapshot") {
    // Served from the recording's artefacts (FILE.artefacts/), not the live run's folder.
    const name = tr.artefact ? tr.artefact.split("/").pop() : null;
    out = snapshotResult(r, who, name ? `/api/artefacts/${encodeURIComponent(name)}` : null);
  } else if (tr.kind === "mappings_diff") out = mappingsResult(r, who);
  else out = { title: `${tr.kind} of ${who}`, tables: [] };
  return { ...out, title: out.title + at };
}
