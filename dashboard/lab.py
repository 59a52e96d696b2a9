"""REST blueprint of the leak lab: the scenario catalogue and the runs."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, send_file

from . import access, errors, scenarios, validate
from .extension import get_memdash

bp = Blueprint("lab", __name__, url_prefix="/api")


def json_body() -> dict:
    """The request's JSON object (an empty body counts as {}), or a 400."""
    if not request.get_data():
        return {}
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json.loads gives up on deep nesting with RecursionError
        raise errors.BadRequest("the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise errors.BadRequest("the body must be a JSON object")
    return body


@bp.get("/scenarios")
@access.audience_ok
def catalogue():
    return jsonify({"scenarios": scenarios.catalogue(), "node": scenarios.node_status()})


@bp.post("/scenarios/<scenario_id>/start")
def start(scenario_id: str):
    body = json_body()
    run = get_memdash().workers.start_run(
        scenario_id, body.get("variant"), body.get("runtime", "python"), body.get("params")
    )
    return jsonify(run.to_dict()), 201


@bp.post("/scenarios/<scenario_id>/compare")
def compare(scenario_id: str):
    body = json_body()
    runs = get_memdash().workers.compare(
        scenario_id, body.get("runtime", "python"), body.get("params")
    )
    return jsonify({"runs": [run.to_dict() for run in runs]}), 201


@bp.get("/runs")
@access.audience_ok
def runs():
    return jsonify({"runs": [run.to_dict() for run in get_memdash().workers.list()]})


@bp.post("/runs/stop-all")
def stop_all():
    stopped = get_memdash().workers.stop_all()
    return jsonify({"stopped": [run.to_dict() for run in stopped]})


@bp.post("/runs/clear-finished")
def clear_finished():
    return jsonify({"cleared": get_memdash().workers.clear_finished()})


@bp.post("/runs/<run_id>/stop")
def stop(run_id: str):
    return jsonify(get_memdash().workers.stop(run_id).to_dict())


def tool_pid(body: dict) -> int | None:
    """The optional "pid" of a tool call: which of the run's processes to examine."""
    pid = body.get("pid")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        raise errors.BadPid(f"pid must be a whole number, got {pid!r}")
    return pid


@bp.post("/runs/<run_id>/leak-report")
def leak_report(run_id: str):
    body = json_body()
    seconds = validate.number(body.get("seconds", 5), "seconds", 1, 60)
    memdash = get_memdash()
    result = memdash.workers.leak_report(run_id, float(seconds), tool_pid(body))
    memdash.record_tool("leak_report", result)
    return jsonify(result)


@bp.post("/runs/<run_id>/heap-snapshot")
def heap_snapshot(run_id: str):
    memdash = get_memdash()
    path, result = memdash.workers.heap_snapshot(run_id, tool_pid(json_body()))
    url = f"/api/runs/{run_id}/heap-snapshot/{path.name}"
    memdash.record_tool("heap_snapshot", result, str(path))
    return jsonify({**result, "url": url, "name": path.name})


@bp.get("/runs/<run_id>/heap-snapshot/<name>")
def download_snapshot(run_id: str, name: str):
    workers = get_memdash().workers
    workers.get(run_id)
    path = workers.snapshot_dir / name
    if "/" in name or not path.is_file():
        raise errors.NotFound(f"no heap snapshot {name!r}")
    return send_file(path, as_attachment=True, download_name=name)
