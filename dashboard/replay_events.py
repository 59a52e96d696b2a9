"""The web side of replay mode (``memdash open FILE``, app config ``REPLAY``): the
:class:`dashboard.replay.ReplaySource` of the app, the Socket.IO events that move its cursor
(``seek``, ``play``, ``pause``: the presenter's), and the REST reads that answer from the
recording instead of /proc.

Read-only is the door's (app._register_door: every POST is 409 ``replaying``); the REST reads
are swapped in place (``app.view_functions``), so the door's role check sees each route's own
``audience_ok`` mark.
"""

from __future__ import annotations

import math
from typing import Callable

from flask import Flask, current_app, jsonify, request, send_file

from . import errors, keep, sessions, validate
from .api import children_arg, query_number, shown_pid
from .extension import Memdash, get_memdash
from .replay import ReplaySource


def install(app: Flask, memdash: Memdash) -> ReplaySource:
    """The app's replay source (``app.extensions["memdash_replay"]``), its REST reads in place."""
    replay = ReplaySource(app.config["REPLAY"], memdash._emit)
    app.extensions["memdash_replay"] = replay
    for endpoint, view in VIEWS.items():
        live = app.view_functions.get(endpoint)
        if live is None:
            continue
        view.memdash_audience_ok = getattr(live, "memdash_audience_ok", False)
        app.view_functions[endpoint] = view
    return replay


def register(handler: Callable, replay: ReplaySource) -> None:
    """``seek {t}``, ``play {speed: 1|10}``, ``pause``: each acks the cursor's new state, and
    every viewer gets it as ``replay``. ``handler`` is events.register's role door."""

    @handler("seek")
    def seek(payload=None):
        if not isinstance(payload, dict) or "t" not in payload:
            raise errors.BadRequest('seek takes {"t": epoch seconds}')
        return replay.seek(validate.number(payload["t"], "t", 0, math.inf))

    @handler("play")
    def play(payload=None):
        payload = {} if payload is None else payload
        if not isinstance(payload, dict):
            raise errors.BadRequest('play takes {"speed": 1} or {"speed": 10}')
        return replay.play(validate.number(payload.get("speed", 1), "speed", 1, 10, integer=True))

    @handler("pause")
    def pause(payload=None):
        return replay.pause()


# -- REST reads from the recording ------------------------------------------------------------


def _replay() -> ReplaySource:
    return current_app.extensions["memdash_replay"]


def _series(pid: str, children: bool = False):
    number = shown_pid(pid)
    target = _replay().target(number, children) or _replay().target(number, not children)
    if target is None:
        raise errors.NoSuchProcess(f"pid {number} is not in this recording")
    return number, target


def processes():
    """The recorded series, RSS at the cursor (None when the process was not alive then)."""
    limit = query_number("limit", 50, 1, 1000, integer=True)
    q = request.args.get("q", "").lower()
    replay = _replay()
    t = replay.cursor()
    found = []
    for rows in replay.series.values():
        row = rows[-1]
        text = f"{row['pid']} {row.get('name') or ''} {row.get('cmdline') or ''}".lower()
        if q and q not in text:
            continue
        recent = replay.read(rows, t - 5, t) if row["first_t"] is not None else []
        info = {k: row.get(k) for k in ("pid", "name", "user", "cmdline", "create_time")}
        found.append({**info, "rss": recent[-1].get("rss") if recent else None,
                      "children": row["children"], "first_t": row["first_t"],
                      "last_t": row["last_t"]})  # fmt: skip
    found.sort(key=lambda p: -(p["rss"] or -1))
    return jsonify({"processes": [get_memdash().public(p) for p in found[:limit]]})


def process(pid: str):
    _number, target = _series(pid)
    heap = {"language_heap": None, "heap_source": None, "heap_tools": []}  # nothing to ask
    return jsonify({**get_memdash().public(target.describe()), **heap})


def samples(pid: str):
    """Full resolution (the page's zoom): since ``since``, up to ``until`` or the cursor."""
    number, target = _series(pid, children_arg())
    since = query_number("since", None, 0, math.inf)
    until = query_number("until", None, 0, math.inf)
    info = get_memdash().public(target.describe())
    return jsonify({"pid": number, "process": info, "samples": target.history.since(since, until)})


def tree(pid: str):
    number, _target = _series(pid, True)
    return jsonify({"pid": number, "members": [], "ranking": [], "root_exited": False,
                    "extra": 0, "note": "a recording keeps no tree membership"})  # fmt: skip


def mappings(pid: str):
    raise errors.Replaying("a recording is open: there is no live process to read")


def artefacts():
    return jsonify({"artefacts": sessions.list_artefacts(_replay().rec.path)})


def artefact(name: str):
    path = sessions.artefact_path(_replay().rec.path, name)
    kind = "application/json" if name.endswith(".heapsnapshot") else None
    return send_file(path, as_attachment=True, download_name=name, mimetype=kind)


def runs():
    return jsonify({"runs": _replay().runs()})


def export():
    """The recording being replayed, whole (not up to the cursor), as `memdash export`."""
    return keep.export_response(_replay().rec.path)


VIEWS = {
    "api.processes": processes,
    "api.process": process,
    "api.samples": samples,
    "api.tree": tree,
    "api.mappings": mappings,
    "keep.artefacts": artefacts,
    "keep.artefact": artefact,
    "keep.export_session": export,
    "lab.runs": runs,
}
