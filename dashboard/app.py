"""The application factory: ``create_app(config)`` assembles the Flask app: config defaults,
the memdash extension (:mod:`dashboard.extension`: Socket.IO, sampler, worker pool, the access
guard), the blueprints and Socket.IO handlers, the page, the role door and the error handlers.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from . import __version__, access, api, assets, errors, events, heaps, keep, lab, metrics
from .extension import Memdash
from .replay_events import install as install_replay

DEFAULTS = {
    "INTERVAL": 0.1,  # seconds between fast samples (20 ms .. 10 s)
    "DETAIL_INTERVAL": 1.0,  # seconds between USS/PSS/swap/anon reads while a viewer draws one
    "BACKGROUND_DETAIL_INTERVAL": 10.0,  # ... while the viewers draw none (RSS, language heap)
    "HISTORY_SECONDS": 1800,  # history kept per watched process
    "LINGER": 60.0,  # keep sampling this long after the last viewer left (reconnect backfill)
    "MAX_WATCHES": 32,  # watched processes per viewer
    "MAX_TARGETS": 256,  # processes sampled at once, all viewers and owners together
    "MAX_VIEWERS": 200,  # Socket.IO connections at once; the next one is refused
    "MAX_RUNS": 8,  # scenario runs alive at once
    "RUNS_MEMORY_FRACTION": 0.25,  # all runs together may use this much of system RAM
    "PINNED_PIDS": (),  # watched from start-up (the CLI's --pid)
    "PINNED_CHILDREN": False,  # ... with all their descendants (--children)
    # Who may connect and as whom (access.Access): loopback names only, everyone presenter,
    # unless the CLI binds beyond loopback (then a presenter token and this machine's names).
    "ACCESS": None,
    "SHARE_URLS": None,  # {"presenter", "audience"} when the room can join (--share)
    "RECORDER": None,  # a recording.Recorder the CLI opened (every session is recorded)
    "REPLAY": None,  # a recorded.Recording to serve read-only (`memdash open`): replay_events
}


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=None, template_folder=str(assets.web_dir("templates")))
    app.config.from_mapping(DEFAULTS)
    app.config.update(config or {})
    if app.config["ACCESS"] is None:
        app.config["ACCESS"] = access.Access()
    app.json.sort_keys = False
    memdash = Memdash(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(lab.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(heaps.bp)
    app.register_blueprint(keep.bp)
    collector = metrics.WatchedProcesses(memdash)
    memdash.sampler.add_sink(collector)
    memdash.metrics_registry = metrics.registry_for(collector)
    replay = install_replay(app, memdash) if app.config["REPLAY"] is not None else None
    events.register(memdash.socketio, replay)
    _register_pages(app, assets.AssetStore())
    _register_door(app)
    _register_errors(app)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return app


def _register_pages(app: Flask, store: assets.AssetStore) -> None:
    @app.get("/")
    @access.audience_ok
    def index():
        role = request.environ.get(access.ROLE_KEY, access.PRESENTER)
        shared = app.config["ACCESS"].shared
        replay = app.config["REPLAY"] is not None
        page = render_template(
            "index.html",
            version=__version__,
            asset=store.url,
            role=role,
            shared=shared,
            replay=replay,
        )
        # The shell is small and names every file by content: it is the one thing a reload
        # fetches again. A token in the URL is dropped by the page itself (replaceState).
        return Response(page, mimetype="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/static/<version>/<path:name>")
    @access.audience_ok
    def static_file(version: str, name: str):
        asset = store.get(name)
        if asset is None:
            if store.knows(name):
                raise errors.Unavailable(f"{name} is missing: run `make setup` (it installs it)")
            raise errors.NotFound(f"no file named {name!r}")
        if version != store.version:  # an old page after an upgrade: serve, but don't cache
            cache = "no-cache"
        else:
            cache = "public, max-age=31536000, immutable"
        gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
        response = Response(asset.gzipped if gzipped else asset.data, mimetype=asset.mimetype)
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
        response.headers["Cache-Control"] = cache
        return response


def _register_door(app: Flask) -> None:
    """The one door for roles: the audience may only read, and only what a view marked
    :func:`access.audience_ok` offers; every other endpoint (all that start, stop or change
    anything, and anything added later) is the presenter's. Also: a POST must be JSON, so a
    plain form from another page cannot start processes."""

    @app.before_request
    def door():
        audience = request.environ.get(access.ROLE_KEY) == access.AUDIENCE
        if audience and request.endpoint is not None:  # no endpoint: the 404 says enough
            view = app.view_functions[request.endpoint]
            readable = getattr(view, "memdash_audience_ok", False)
            if not readable or request.method not in ("GET", "HEAD"):
                raise errors.PresenterOnly(
                    "only the presenter can do this; the audience follows read-only"
                )
        if app.config["REPLAY"] is not None and request.method not in ("GET", "HEAD"):
            raise errors.Replaying("a recording is open (memdash open): it is read-only")
        if request.method == "POST" and not request.is_json:
            raise errors.UnsupportedMediaType(
                "POST bodies must be JSON (Content-Type: application/json)"
            )


def _register_errors(app: Flask) -> None:
    @app.errorhandler(errors.MemdashError)
    def memdash_error(e: errors.MemdashError):
        return jsonify(e.body()), e.status

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        """Werkzeug's own errors (no such route, wrong method) in memdash's shape."""
        kinds = {404: errors.NotFound, 405: errors.MethodNotAllowed}
        kind = kinds.get(e.code, errors.BadRequest if (e.code or 500) < 500 else errors.Internal)
        return memdash_error(kind(e.description or e.name))

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        app.logger.exception("unhandled error")
        return memdash_error(errors.Internal(f"internal error: {e}"))
