"""REST: the language-heap tools for any process memdash can see into — one started with
``memdash run`` (its reporters) or a Node program attached with ``--inspect`` (or the
"Attach inspector" button): Find the leak, a heap snapshot, and attaching the inspector.

Every tool action goes through ``workers.action``: it marks the chart (a ``mark`` event) and is
a quiet span for the growth verdicts (a heap snapshot alone makes RSS jump by tens of MiB).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, send_file

from . import errors, memory, validate
from .extension import get_memdash
from .inspect_target import InspectError
from .inspector import Inspector
from .lab import json_body

bp = Blueprint("heaps", __name__, url_prefix="/api/processes")


@bp.post("/<pid>/leak-report")
def leak_report(pid: str):
    number = memory.parse_pid(pid)
    seconds = validate.number(json_body().get("seconds", 5), "seconds", 1, 60)
    memdash = get_memdash()
    with memdash.workers.action("find the leak", number, expect=seconds):
        result = memdash.heaps.leak_report(number, float(seconds))
    memdash.record_tool("leak_report", result)
    return jsonify(result)


@bp.post("/<pid>/heap-snapshot")
def heap_snapshot(pid: str):
    number = memory.parse_pid(pid)
    memdash = get_memdash()
    with memdash.workers.action("heap snapshot", number, expect=10):
        path, result = memdash.heaps.heap_snapshot(number, memdash.workers.snapshot_dir)
    url = f"/api/processes/{number}/heap-snapshot/{path.name}"
    memdash.record_tool("heap_snapshot", {**result, "pid": number}, str(path))
    return jsonify({**result, "pid": number, "name": path.name, "url": url})


@bp.get("/<pid>/heap-snapshot/<name>")
def download_snapshot(pid: str, name: str):
    memory.parse_pid(pid)
    directory = get_memdash().workers.snapshot_dir
    path = directory / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise errors.NotFound(f"no heap snapshot {name!r}")
    return send_file(path, as_attachment=True, download_name=name)


@bp.post("/<pid>/inspect")
def attach(pid: str):
    """Open a running Node program's inspector (opt-in: the presenter asked) and stream its
    heap; the checks (a node of this user, not a zombie) run before any signal is sent."""
    number = memory.parse_pid(pid)
    memdash = get_memdash()
    heaps = memdash.heaps
    if number not in heaps.inspectors or heaps.inspectors[number].ended:
        try:
            heaps.inspectors[number] = Inspector(number, memdash.sampler.add_extra).attach()
        except InspectError as e:
            raise errors.Unavailable(f"cannot attach to {number}: {e}") from None
    return jsonify({"pid": number, **heaps.describe(number)})


@bp.post("/<pid>/inspect/detach")
def detach(pid: str):
    number = memory.parse_pid(pid)
    heaps = get_memdash().heaps
    inspector = heaps.inspectors.pop(number, None)
    if inspector is None:
        raise errors.NotFound(f"memdash is not attached to {number}")
    inspector.detach()
    return jsonify({"pid": number, **heaps.describe(number), "inspector": inspector.status()})
