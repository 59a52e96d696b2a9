"""REST: what this session keeps — where it is recorded, its tool artefacts, and exports of
it from the page (the same CSV, JSON and HTML report as ``memdash export``)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_file

from . import access, errors, export, report, sessions, validate
from .extension import get_memdash
from .recorded import Recording

bp = Blueprint("keep", __name__, url_prefix="/api")

FORMATS = {"csv": "text/csv", "json": "application/json", "html": "text/html"}


def recorder():
    found = get_memdash().recorder
    if found is None:
        raise errors.NotFound("this session is not recorded (memdash was started --no-record)")
    return found


@bp.get("/recording")
@access.audience_ok
def recording():
    """Where this session is recorded and whether that still works (a full disk stops it)."""
    return jsonify({"recording": get_memdash().recording_status()})


@bp.get("/artefacts")
def artefacts():
    """The session's kept tool artefacts (heap snapshots), with size and path."""
    found = get_memdash().recorder
    return jsonify({"artefacts": sessions.list_artefacts(found.path) if found else []})


@bp.get("/artefacts/<name>")
def artefact(name: str):
    path = sessions.artefact_path(recorder().path, name)  # plain names from the listing only
    kind = "application/json" if name.endswith(".heapsnapshot") else None
    return send_file(path, as_attachment=True, download_name=name, mimetype=kind)


@bp.get("/export")
def export_session():
    """``?format=csv|json|html&pid=&since=&until=``: this session so far, as a download."""
    source = recorder()
    source.flush()  # what is queued now is in the file before it is read
    return export_response(source.path)


def export_response(path: Path) -> Response:
    """The recording at ``path`` exported as the request asks (``memdash open`` serves the
    file it replays through this too)."""
    fmt = request.args.get("format", "csv")
    if fmt not in FORMATS:
        raise errors.BadRequest(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    pids = [
        validate.number_text(p, "pid", 1, 2**22, integer=True) for p in request.args.getlist("pid")
    ]
    bounds = {}
    for name in ("since", "until"):
        raw = request.args.get(name, "")
        bounds[name] = validate.number_text(raw, name, 0, math.inf) if raw else None
    with Recording(path) as rec:
        out = io.StringIO()
        if fmt == "csv":
            export.to_csv(rec, out, pids or None, **bounds)
        elif fmt == "json":
            export.to_json(rec, out, pids or None, **bounds)
        else:
            out.write(report.render(rec))
    name = f"{path.stem}.{fmt}"
    return Response(
        out.getvalue(),
        mimetype=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
