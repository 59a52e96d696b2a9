"""The application factory: ``create_app(config)`` assembles the Flask app: config defaults,
the memdash extension (:mod:`dashboard.extension`: Socket.IO, sampler, worker pool), the
blueprints and Socket.IO handlers, the page, the request guards and the error handlers.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, jsonify, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from . import __version__, api, assets, errors, events, lab
from .extension import Memdash

DEFAULTS = {
    "INTERVAL": 0.1,  # seconds between fast samples (20 ms .. 10 s)
    "DETAIL_INTERVAL": 1.0,  # seconds between USS/PSS/swap/anon reads of a watched process
    "HISTORY_SECONDS": 1800,  # history kept per watched process
    "LINGER": 60.0,  # keep sampling this long after the last viewer left (reconnect backfill)
    "MAX_WATCHES": 32,  # watched processes per viewer
    "MAX_RUNS": 8,  # scenario runs alive at once
    "RUNS_MEMORY_FRACTION": 0.25,  # all runs together may use this much of system RAM
    "PINNED_PIDS": (),  # watched from start-up (the CLI's --pid)
    # Host names the server answers to; None = any. Loopback only by default, so a web page
    # elsewhere cannot reach it by pointing its own name at 127.0.0.1 (DNS rebinding).
    "ALLOWED_HOSTS": ("127.0.0.1", "localhost", "::1"),
}


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        static_folder=str(assets.web_dir("static")),
        template_folder=str(assets.web_dir("templates")),
    )
    app.config.from_mapping(DEFAULTS)
    app.config.update(config or {})
    app.json.sort_keys = False
    memdash = Memdash(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(lab.bp)
    events.register(memdash.socketio)
    _register_pages(app)
    _register_guards(app)
    _register_errors(app)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return app


def _register_pages(app: Flask) -> None:
    @app.get("/")
    def index():
        return render_template("index.html", version=__version__)

    @app.get("/assets/<name>")
    def asset(name: str):
        find = assets.ASSETS.get(name)
        if find is None:
            raise errors.NotFound(f"no asset named {name!r}")
        path = find()
        if not path.is_file():
            raise errors.Unavailable(f"{name} is missing: run `make setup` (it installs the JS)")
        return send_file(path, mimetype="text/javascript", max_age=3600)


def _register_guards(app: Flask) -> None:
    """memdash starts processes on this machine: refuse requests that a web page elsewhere
    could make a browser send (wrong Host, or a POST that is not JSON, like a plain form)."""

    @app.before_request
    def guard():
        allowed = app.config["ALLOWED_HOSTS"]
        hostname = urlsplit(f"//{request.host}").hostname or ""
        if allowed is not None and hostname not in allowed:
            raise errors.BadHost(
                f"memdash does not answer to host {hostname!r}; use http://127.0.0.1"
            )
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
