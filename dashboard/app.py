"""The application factory: ``create_app(config)`` builds the Flask app, its Socket.IO
server, the one sampler and the scenario worker pool. Nothing runs until
:meth:`Memdash.start` (the CLI calls it; the first Socket.IO connection does too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, render_template, request, send_file
from flask_socketio import SocketIO
from werkzeug.exceptions import HTTPException

from . import __version__, assets, errors
from .sampler import Sampler
from .workers import WorkerPool

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


@dataclass
class Memdash:
    """What one app owns: its Socket.IO server, the sampler and the worker pool."""

    socketio: SocketIO
    sampler: Sampler
    workers: WorkerPool

    def start(self) -> None:
        self.sampler.start()
        self.workers.start()

    def stop(self) -> None:
        self.workers.stop_all(reason="memdash shut down")
        self.workers.close()
        self.sampler.stop()


def get_memdash() -> Memdash:
    return current_app.extensions["memdash"]


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        static_folder=str(assets.web_dir("static")),
        template_folder=str(assets.web_dir("templates")),
    )
    app.config.from_mapping(DEFAULTS)
    app.config.update(config or {})
    app.json.sort_keys = False

    socketio = SocketIO(app, async_mode="threading")

    def emit(event: str, payload: dict | list, room: str | None) -> None:
        if isinstance(payload, list):
            # Batches for one viewer (see Sampler.flush). Viewers that are not sockets (the
            # CLI's --pid, a leak-lab run) receive nothing, and python-socketio would encode
            # the message before finding nobody in the room: skip them on this hot path.
            if not socketio.server.manager.is_connected(room, "/"):
                return
            payload = tuple(payload)  # python-socketio sends a tuple as several arguments
        socketio.emit(event, payload, to=room)

    sampler = Sampler(
        interval=app.config["INTERVAL"],
        detail_interval=app.config["DETAIL_INTERVAL"],
        history_seconds=app.config["HISTORY_SECONDS"],
        linger=app.config["LINGER"],
        emit=emit,
    )
    workers = WorkerPool(
        sampler=sampler,
        emit=emit,
        max_runs=app.config["MAX_RUNS"],
        memory_fraction=app.config["RUNS_MEMORY_FRACTION"],
    )
    for pid in app.config["PINNED_PIDS"]:
        sampler.watch(pid, False, viewer="cli")
    app.extensions["memdash"] = Memdash(socketio, sampler, workers)

    from . import api, events, lab

    app.register_blueprint(api.bp)
    app.register_blueprint(lab.bp)
    events.register(socketio)
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
            raise errors.MemdashError(
                f"memdash does not answer to host {hostname!r}; use http://127.0.0.1",
                code="bad_host",
                status=403,
            )
        if request.method == "POST" and not request.is_json:
            raise errors.MemdashError(
                "POST bodies must be JSON (Content-Type: application/json)",
                code="unsupported_media_type",
                status=415,
            )


def _register_errors(app: Flask) -> None:
    @app.errorhandler(errors.MemdashError)
    def memdash_error(e: errors.MemdashError):
        return jsonify(e.body()), e.status

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.code, "bad_request")
        body = errors.error_body(code, e.description or e.name)
        return jsonify(body), e.code

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        app.logger.exception("unhandled error")
        return jsonify(errors.error_body("internal", f"internal error: {e}")), 500
