"""Socket.IO handlers: viewers watch and unwatch processes; acks carry history or an error.

Every handler answers with an ack: the result, or ``{"error": {"code", "message"}}``. A bad
payload from one viewer never raises out of a handler, so nobody else notices it.
"""

from __future__ import annotations

import functools
import logging
import math

from flask import current_app, request
from flask_socketio import SocketIO, emit, join_room, leave_room

from . import errors, memory
from .app import get_memdash

log = logging.getLogger(__name__)


def acked(handler):
    """Turn memdash errors (and surprises) into the error body instead of a dropped ack."""

    @functools.wraps(handler)
    def wrapper(*args):
        try:
            return handler(*args)
        except errors.MemdashError as e:
            return e.body()
        except Exception as e:  # keep the server up for everyone else
            log.exception("socket handler %s failed", handler.__name__)
            return errors.error_body("internal", f"internal error: {e}")

    return wrapper


def parse_watch(payload: object) -> tuple[int, bool, float | None]:
    """Validate ``{pid, children?, since?}``."""
    if not isinstance(payload, dict):
        raise errors.BadRequest('payload must be an object like {"pid": 1234}')
    if "pid" not in payload:
        raise errors.BadRequest("payload needs a pid")
    pid = memory.check_pid(payload["pid"])
    children = payload.get("children", False)
    if not isinstance(children, bool):
        raise errors.BadRequest("children must be true or false")
    since = payload.get("since")
    if since is not None and (
        isinstance(since, bool) or not isinstance(since, (int, float)) or not math.isfinite(since)
    ):
        raise errors.BadRequest("since must be a time in epoch seconds")
    return pid, children, since


def register(socketio: SocketIO) -> None:
    @socketio.on("connect")
    def connect(auth=None):
        memdash = get_memdash()
        memdash.start()
        if memdash.sampler.last_system is not None:
            emit("system", memdash.sampler.last_system)

    @socketio.on("disconnect")
    def disconnect(*_reason):
        get_memdash().sampler.release(request.sid)

    @socketio.on("watch")
    @acked
    def watch(payload=None):
        pid, children, since = parse_watch(payload)
        sampler = get_memdash().sampler
        watching = sum(1 for t in sampler.targets() if request.sid in t.viewers)
        already = sampler.target(pid, children)
        if watching >= current_app.config["MAX_WATCHES"] and not (
            already and request.sid in already.viewers
        ):
            raise errors.TooMany(
                f"a viewer may watch at most {current_app.config['MAX_WATCHES']} processes; "
                "unwatch one first",
                code="too_many_watches",
            )
        target = sampler.watch(pid, children, viewer=request.sid)
        # Join first, then read history: a sample may arrive twice, never be missed.
        join_room(target.room)
        return {
            "pid": pid,
            "children": children,
            "process": target.describe(),
            "samples": target.history.since(since),
        }

    @socketio.on("unwatch")
    @acked
    def unwatch(payload=None):
        if not isinstance(payload, dict) or "pid" not in payload:
            raise errors.BadRequest('payload must be an object like {"pid": 1234}')
        pid = memory.check_pid(payload["pid"])
        children = payload.get("children", False) is True
        sampler = get_memdash().sampler
        target = sampler.target(pid, children)
        if target is None or not sampler.unwatch(pid, children, request.sid):
            raise errors.NotFound(f"this viewer is not watching pid {pid}", code="not_watching")
        leave_room(target.room)
        return {"pid": pid, "ok": True}

    @socketio.on("*")
    def unknown(event, *_args):
        """Events nobody handles get an error ack instead of silence."""
        return errors.error_body(
            "unknown_event", f"unknown event {event!r}; memdash knows watch and unwatch"
        )
