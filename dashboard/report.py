"""A self-contained HTML report of a recording: one file that opens offline, with no server,
and loads nothing from the network.

Plotly is inlined from the installed package (plotly.min.js, about 4.6 MiB), so the data gets
what is left of a 5 MiB budget: each process is cut into equal time buckets in SQL
(:meth:`Recording.envelope`) and drawn as its mean with a shaded min/max band, so a one-sample
spike in an hour stays visible. To keep the numbers short, times are hundredths of a second
after the first sample and sizes are KiB.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

from .assets import plotly_js
from .recorded import Recording

TOTAL_POINTS = 3000  # buckets shared by all processes (~25 bytes per figure drawn)
MIN_POINTS, MAX_POINTS = 150, 1500
DRAWN = ("rss", "uss", "pss", "swap", "heap_used")
RESULT_CHARS = 4000  # of each tool result's JSON, shown folded


def _when(t: float | None) -> str:
    if t is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f".{int(t * 10) % 10}"


def _mib(value: float | None) -> str:
    return "" if value is None else f"{value / 2**20:,.1f} MiB"


def _series(rec: Recording, process: dict, points: int, t0: float) -> dict:
    env = rec.envelope(process["id"], points, fields=DRAWN)
    out = {"t": [round((t - t0) * 100) for t in env["t"]]}
    for field in DRAWN:
        if field in env:
            column = env[field]
            kib = {k: [None if v is None else round(v / 1024) for v in column[k]]
                   for k in ("min", "max", "mean")}  # fmt: skip
            if kib["min"] == kib["max"]:  # one sample per bucket: one list is enough
                del kib["min"], kib["max"]
            out[field] = kib
    return out


def report_data(rec: Recording) -> dict:
    """Everything the report draws, as JSON-able data."""
    first, last = rec.time_range()
    processes = [p for p in rec.processes() if p["samples"]]
    points = max(MIN_POINTS, min(MAX_POINTS, TOTAL_POINTS // max(1, len(processes))))
    charts = []
    for p in processes:
        label = f"{p['name'] or '?'} (pid {p['pid']}{', with children' if p['children'] else ''})"
        charts.append({"label": label, "series": _series(rec, p, points, first)})
    marks = [{"t": round((m["t"] - first) * 100), "label": m["label"] or m["kind"] or ""}
             for m in rec.marks()]  # fmt: skip
    return {"t0": first, "charts": charts, "marks": marks}


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p class=none>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows
    )  # cells are escaped by the callers (some hold markup)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(run: dict) -> str:
    growth = run.get("verdict") or run.get("growth") or {}
    if not growth:
        return ""
    rate = growth.get("bytes_per_min")
    words = growth.get("verdict", "")
    return html.escape(f"{words} {_mib(rate)}/min" if rate is not None else words)


def _sections(rec: Recording) -> str:
    e = html.escape
    first, last = rec.time_range()
    meta = rec.meta
    out = [
        f"<p>From <b>{e(_when(first))}</b> to <b>{e(_when(last))}</b> ({last - first:,.1f} s),"
        f" recorded by memdash {e(str(meta.get('memdash_version', '?')))} on"
        f" {e(str(meta.get('host', '?')))}, a sample every {e(str(meta.get('interval')))} s.</p>"
    ]
    procs = [
        [e(str(p["pid"])), e(p["name"] or ""), "yes" if p["children"] else "",
         e(_when(p["first_t"])), e(_when(p["last_t"])), str(p["samples"]),
         f"<code>{e(p['cmdline'] or '')}</code>"]
        for p in rec.processes()
    ]  # fmt: skip
    out += ["<h2>Processes</h2>", _table(
        ["pid", "name", "children", "first sample", "last sample", "samples", "command"],
        procs, "No process was recorded.")]  # fmt: skip
    runs = [
        [e(str(r.get("run_id", ""))), e(f"{r.get('scenario', '')} {r.get('variant', '')}"),
         e(str(r.get("runtime", ""))), e(str(r.get("pid", ""))), e(str(r.get("state", ""))),
         _verdict(r), e(_when(r.get("started_at"))), e(_when(r.get("ended_at"))),
         e(str(r.get("reason") or ""))]
        for r in rec.runs()
    ]  # fmt: skip
    out += ["<h2>Runs</h2>", _table(
        ["run", "scenario", "runtime", "pid", "state", "verdict", "started", "ended", "reason"],
        runs, "No leak-lab run in this recording.")]  # fmt: skip
    exits = [[e(_when(x["t"])), e(str(x["pid"])), e(x["reason"] or "")] for x in rec.exits()]
    out += ["<h2>Exits</h2>", _table(["time", "pid", "reason"], exits, "No process exited.")]
    marks = [[e(_when(m["t"])), e(m["kind"] or ""), e(m["label"] or ""), e(str(m["pid"] or ""))]
             for m in rec.marks()]  # fmt: skip
    out += ["<h2>Marks</h2>", _table(["time", "kind", "label", "pid"], marks, "No marks.")]
    tools = []
    for r in rec.tool_results():
        text = json.dumps(r["result"], indent=1)
        if len(text) > RESULT_CHARS:
            text = text[:RESULT_CHARS] + f"\n… ({len(text) - RESULT_CHARS} more characters)"
        folded = f"<details><summary>result</summary><pre>{e(text)}</pre></details>"
        tools.append([e(_when(r["t"])), e(r["kind"] or ""), e(str(r["run_id"] or "")),
                      e(str(r["pid"] or "")), e(r["artefact"] or ""), folded])  # fmt: skip
    headers = ["time", "tool", "run", "pid", "artefact", "result"]
    out += ["<h2>Tool results</h2>", _table(headers, tools, "No tool was used.")]
    return "\n".join(out)


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:left;vertical-align:top}code{font-size:12px}.chart{height:340px}.none{color:#777}
pre{max-height:20em;overflow:auto;font-size:12px}
"""

SCRIPT = """
const data = JSON.parse(document.getElementById("memdash-data").textContent);
const colours = {rss: "#1f77b4", uss: "#2ca02c", pss: "#9467bd", swap: "#d62728",
                 heap_used: "#ff7f0e"};
const kib = (vs) => vs.map((v) => (v === null ? null : v * 1024));
const x = (ts) => ts.map((t) => new Date((data.t0 + t / 100) * 1000));
const shapes = data.marks.map((m) => ({type: "line", xref: "x", yref: "paper", y0: 0, y1: 1,
  x0: new Date((data.t0 + m.t / 100) * 1000), x1: new Date((data.t0 + m.t / 100) * 1000),
  line: {dash: "dot", width: 1, color: "#888"}}));
for (const chart of data.charts) {
  const div = document.createElement("div");
  div.className = "chart";
  const h = document.createElement("h3");
  h.textContent = chart.label;
  document.getElementById("charts").append(h, div);
  const xs = x(chart.series.t), traces = [];
  for (const [field, col] of Object.entries(chart.series)) {
    if (field === "t") continue;
    const colour = colours[field];
    if (col.max) {  // the band: max, then min filled up to it
      traces.push({x: xs, y: kib(col.max), mode: "lines", line: {width: 0}, hoverinfo: "skip",
                   showlegend: false, legendgroup: field});
      traces.push({x: xs, y: kib(col.min), mode: "lines", line: {width: 0}, fill: "tonexty",
                   fillcolor: colour + "40", name: field + " min–max", legendgroup: field});
    }
    traces.push({x: xs, y: kib(col.mean), mode: "lines", name: field, legendgroup: field,
                 line: {color: colour, width: 1.5}});
  }
  Plotly.newPlot(div, traces, {margin: {t: 10, r: 10, b: 40, l: 70}, shapes,
    yaxis: {title: {text: "bytes"}, exponentformat: "SI", ticksuffix: "B"},
    legend: {orientation: "h"}}, {responsive: true, displaylogo: false});
}
document.body.dataset.drawn = String(data.charts.length);
"""


def render(rec: Recording) -> str:
    """The report as one HTML document."""
    data = json.dumps(report_data(rec), separators=(",", ":")).replace("</", "<\\/")
    title = html.escape(f"memdash recording {rec.path.name}")
    plotly = plotly_js().read_text(encoding="utf-8")
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
        f"<style>{STYLE}</style><script>{plotly}</script></head><body>"
        f"<h1>{title}</h1>{_sections(rec)}<h2>Memory</h2>"
        "<p>Each line is the mean of a time bucket; the shaded band spans its minimum and "
        "maximum, so short spikes stay visible.</p><div id=charts></div>"
        f'<script type="application/json" id="memdash-data">{data}</script>'
        f"<script>{SCRIPT}</script></body></html>"
    )


def write_report(rec: Recording, out: str | os.PathLike) -> int:
    """Write the report to ``out``; returns its size in bytes."""
    text = render(rec).encode("utf-8")
    Path(out).write_bytes(text)
    return len(text)
