"""REST blueprint: system memory, the process list, one process, its samples and mappings."""

from __future__ import annotations

import math
import time

from flask import Blueprint, jsonify, request

from . import memory, validate
from .extension import get_memdash

bp = Blueprint("api", __name__, url_prefix="/api")


def query_number(name: str, default, low: float, high: float, *, integer: bool = False):
    """A numeric query argument within [low, high] (``default`` when absent), or a 400."""
    raw = request.args.get(name, "")
    if raw == "":
        return default
    return validate.number_text(raw, name, low, high, integer=integer)


@bp.get("/system")
def system():
    return jsonify(memory.system())


@bp.get("/processes")
def processes():
    limit = query_number("limit", 50, 1, 1000, integer=True)
    return jsonify({"processes": memory.list_processes(request.args.get("q", ""), limit)})


@bp.get("/processes/<pid>")
def process(pid: str):
    return jsonify(memory.describe(memory.parse_pid(pid)))


@bp.get("/processes/<pid>/samples")
def samples(pid: str):
    """History when the process is watched; otherwise one fresh sample."""
    number = memory.parse_pid(pid)
    since = query_number("since", None, 0, math.inf)
    children = request.args.get("children") in ("1", "true")
    target = get_memdash().sampler.target(number, children)
    if target is not None:
        return jsonify(
            {"pid": number, "process": target.describe(), "samples": target.history.since(since)}
        )
    memory.identify(number)  # refuses kernel threads and zombies with their own errors
    info = memory.describe(number)
    sample = {"t": time.time(), **memory.read_fast(number)}
    return jsonify({"pid": number, "process": info, "samples": [sample]})


@bp.get("/processes/<pid>/mappings")
def mappings(pid: str):
    """Which mappings grew over ``seconds`` (heap, anonymous, file-backed, stack)."""
    number = memory.parse_pid(pid)
    seconds = query_number("seconds", 5.0, 0.0, 60.0)
    before = memory.read_mappings(number)
    time.sleep(seconds)  # the two reads must be this far apart; a request thread of its own
    after = memory.read_mappings(number)
    return jsonify({"pid": number, "seconds": seconds, **diff_mappings(before, after)})


def diff_mappings(before: list[dict], after: list[dict]) -> dict:
    """Group RSS by kind of mapping and list the mappings that grew most."""
    kinds = ("heap", "anonymous", "file", "stack", "other")
    groups = {k: {"kind": k, "rss_before": 0, "rss_after": 0, "diff": 0} for k in kinds}
    # Keyed by start address: a growing mapping (the [heap]) keeps its start, not its end.
    old = {m["address"].split("-")[0]: m for m in before}
    grew = []
    for m in after:
        prev = old.pop(m["address"].split("-")[0], None)
        rss_before = prev["rss"] if prev else 0
        group = groups[m["kind"]]
        group["rss_before"] += rss_before
        group["rss_after"] += m["rss"]
        grew.append({**m, "rss_before": rss_before, "diff": m["rss"] - rss_before})
    for m in old.values():  # unmapped since
        groups[m["kind"]]["rss_before"] += m["rss"]
        grew.append({**m, "rss_before": m["rss"], "rss_after": 0, "diff": -m["rss"]})
    for group in groups.values():
        group["diff"] = group["rss_after"] - group["rss_before"]
    grew.sort(key=lambda m: m["diff"], reverse=True)
    top = [
        {
            "name": m["name"] or "[anonymous]",
            "kind": m["kind"],
            "address": m["address"],
            "diff": m["diff"],
            "rss_after": m.get("rss_after", m["rss"]),
        }
        for m in grew[:10]
        if m["diff"]
    ]
    return {"groups": list(groups.values()), "top": top}
