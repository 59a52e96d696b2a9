"""REST blueprint: system memory, the process list, one process, its samples and mappings."""

from __future__ import annotations

import math
import time

from flask import Blueprint, current_app, jsonify, request

from . import access, errors, memory, share, trees, validate
from .extension import get_memdash

bp = Blueprint("api", __name__, url_prefix="/api")


def query_number(name: str, default, low: float, high: float, *, integer: bool = False):
    """A numeric query argument within [low, high] (``default`` when absent), or a 400."""
    raw = request.args.get(name, "")
    if raw == "":
        return default
    return validate.number_text(raw, name, low, high, integer=integer)


def role() -> str:
    return request.environ.get(access.ROLE_KEY, access.PRESENTER)


def shown_pid(pid: str) -> int:
    """The URL's pid, if this viewer may see it (the audience: only what the presenter shows)."""
    number = memory.parse_pid(pid)
    get_memdash().check_shown(number, role())
    return number


def children_arg() -> bool:
    """``?children=1``: the process with its descendants (a tree's total)."""
    return request.args.get("children") in ("1", "true")


@bp.get("/system")
@access.audience_ok
def system():
    return jsonify(memory.system())


@bp.get("/share")
def share_info():
    """The room's two links and the audience link's QR code (presenter only: the page shows
    it full-screen for the room to scan)."""
    urls = current_app.config["SHARE_URLS"]
    if urls is None:
        raise errors.NotFound("memdash is not shared; start it with --share")
    return jsonify({**urls, "qr_svg": share.qr_svg(urls["audience"])})


@bp.get("/processes")
def processes():
    limit = query_number("limit", 50, 1, 1000, integer=True)
    found = memory.list_processes(request.args.get("q", ""), limit)
    return jsonify({"processes": [get_memdash().public(p) for p in found]})


@bp.get("/processes/<pid>")
@access.audience_ok
def process(pid: str):
    number = shown_pid(pid)
    memdash = get_memdash()
    info = memdash.public(memory.describe(number))
    return jsonify({**info, **memdash.heaps.describe(number)})  # "no language heap" when None


@bp.get("/processes/<pid>/samples")
@access.audience_ok
def samples(pid: str):
    """History when the process is watched; otherwise one fresh sample."""
    number = shown_pid(pid)
    memdash = get_memdash()
    since = query_number("since", None, 0, math.inf)
    target = memdash.sampler.target(number, children_arg())
    if target is not None:
        info = memdash.public(target.describe())
        return jsonify({"pid": number, "process": info, "samples": target.history.since(since)})
    memory.identify(number)  # refuses kernel threads and zombies with their own errors
    info = memdash.public(memory.describe(number))
    sample = {"t": time.time(), **memory.read_fast(number)}
    return jsonify({"pid": number, "process": info, "samples": [sample]})


@bp.get("/processes/<pid>/growth")
@access.audience_ok
def growth(pid: str):
    """The server's growth verdict of a sampled process (the same one the `growth` event
    carries); 404 `not_watching` for a process memdash does not sample."""
    number, children = shown_pid(pid), children_arg()
    memdash = get_memdash()
    judged = memdash.growth_of(number, children)
    if memdash.sampler.target(number, children) is None or judged is None:
        raise errors.NotWatching(f"memdash does not sample pid {number}; watch it first")
    return jsonify({"pid": number, "children": children, "growth": judged})


@bp.get("/processes/<pid>/tree")
@access.audience_ok
def tree(pid: str):
    """A tree's members and their ranking by growth (as watched, else as it is now)."""
    number = shown_pid(pid)
    memdash = get_memdash()
    return jsonify(
        trees.report(
            memdash.sampler.target(number, True), number, memdash.growth_of, memdash.public
        )
    )


@bp.get("/processes/<pid>/mappings")
def mappings(pid: str):
    """Which mappings grew over ``seconds`` (heap, anonymous, file-backed, stack)."""
    number = memory.parse_pid(pid)
    seconds = query_number("seconds", 5.0, 0.0, 60.0)
    memdash = get_memdash()
    with memdash.workers.action("mappings diff", number, expect=seconds):
        before = memory.read_mappings(number)
        time.sleep(seconds)  # the two reads must be this far apart; a request thread of its own
        after = memory.read_mappings(number)
    result = {"pid": number, "seconds": seconds, **diff_mappings(before, after)}
    memdash.record_tool("mappings_diff", result)
    return jsonify(result)


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
