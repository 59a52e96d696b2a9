"""Socket.IO handlers: viewers watch and unwatch processes; acks carry history or an error.

Every handler answers with an ack: the result, or ``{"error": {"code", "message"}}``. A bad
payload from one viewer never raises out of a handler, so nobody else notices it.
"""

from __future__ import annotations

import functools
import logging
import math

from flask import current_app, request
from flask_socketio import SocketIO, emit

from . import errors, memory, validate
from .extension import get_memdash

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
            return errors.Internal(f"internal error: {e}").body()

    return wrapper


def parse_watch(payload: object) -> tuple[int, bool, float | None]:
    """Validate ``{pid, children?, since?}``."""
    if not isinstance(payload, dict) or "pid" not in payload:
        raise errors.BadRequest('payload must be an object like {"pid": 1234}')
    pid = memory.check_pid(payload["pid"])
    children = payload.get("children", False)
    if not isinstance(children, bool):
        raise errors.BadRequest("children must be true or false")
    since = payload.get("since")
    if since is not None:
        since = validate.number(since, "since", 0, math.inf)
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
        limit = current_app.config["MAX_WATCHES"]
        target = get_memdash().sampler.watch(pid, children, request.sid, limit=limit)
        # The socket receives batches from now on; the history is read after: a sample may
        # arrive twice, never be missed.
        return {
            "pid": pid,
            "children": children,
            "process": target.describe(),
            "samples": target.history.since(since),
        }

    @socketio.on("unwatch")
    @acked
    def unwatch(payload=None):
        pid, children, _since = parse_watch(payload)
        if not get_memdash().sampler.unwatch(pid, children, request.sid):
            raise errors.NotWatching(f"this viewer is not watching pid {pid}")
        return {"pid": pid, "ok": True}

    @socketio.on("*")
    def unknown(event, *_args):
        """Events nobody handles get an error ack instead of silence."""
        return errors.UnknownEvent(
            f"unknown event {event!r}; memdash knows watch and unwatch"
        ).body()
