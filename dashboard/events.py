"""Socket.IO handlers: viewers watch and unwatch processes; the presenter publishes what is on
screen (``view``) and the audience follows it. Acks carry history or an error.

Every handler answers with an ack: the result, or ``{"error": {"code", "message"}}``. A bad
payload from one viewer never raises out of a handler, so nobody else notices it. Roles are
checked here, at one door (:func:`handler`): an event is the presenter's unless registered
with ``audience=True``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import time

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, SocketIO, emit, join_room

from . import access, errors, memory, replay_events, shared_json, trees, validate
from .extension import get_memdash
from .replay import ReplaySource

log = logging.getLogger(__name__)

AUDIENCE_ROOM = "audience"
VIEW_MAX_BYTES = 64 * 1024  # a view names processes and settings, never samples
DRAWABLE = memory.SAMPLE_FIELDS[1:]  # sample fields a page may draw ("t" is the x axis)
RATE, BURST = 10.0, 40  # watch/unwatch per second per socket, and the burst allowed


class RateLimiter:
    """A token bucket per socket: a flood of watch/unwatch from one viewer gets 429s while
    everyone else is served as before."""

    def __init__(self, rate: float = RATE, burst: int = BURST):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, sid: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(sid, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[sid] = (tokens, now)
                raise errors.RateLimited("too many watch requests; slow down")
            self._buckets[sid] = (tokens - 1, now)

    def forget(self, sid: str) -> None:
        with self._lock:
            self._buckets.pop(sid, None)


# A room joining at once asks for a few processes' current buckets: a handful of entries. Each
# keeps its head list alive, so the cache stays small.
_backfills = shared_json.Shared(size=16)


def shared_backfill(target, since, window, max_points) -> tuple[object, float]:
    """``history.backfill`` as (samples, bucket), its cached part encoded once: viewers who
    join within the same bucket (a room joining at once) share that text and encode only the
    filling bucket's few samples. A replay's history is read as it is, for each viewer."""
    history = target.history
    parts = getattr(history, "backfill_parts", None)
    if parts is None:
        return history.backfill(since, window, max_points)
    head, tail, bucket = parts(since, window, max_points)
    if not tail or not head:  # all full-rate samples (a short span): nothing shared
        return head or tail, bucket
    # The head list's identity names it while the history's cache holds it; it is kept
    # with its encoding, so the id is never that of a newer list.
    text = _backfills.get(id(head), lambda: (head, shared_json.encode(head)))[1].text
    return shared_json.Encoded(text[:-1] + "," + shared_json.encode(tail).text[1:]), bucket


def parse_backfill(payload: dict) -> tuple[float | None, int]:
    """``window`` (seconds on screen; absent or 0: everything) and ``max_points`` (2-2000)."""
    window = payload.get("window")
    window = validate.number(window, "window", 0, math.inf) if window is not None else None
    max_points = payload.get("max_points", 2000)
    return window or None, validate.number(max_points, "max_points", 2, 2000, integer=True)


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


def parse_view(payload: object) -> dict:
    """The presenter's view: an object naming the watched processes and the settings."""
    if not isinstance(payload, dict):
        raise errors.BadRequest('a view is an object like {"watches": [{"pid": 1234}]}')
    watches = payload.get("watches", [])
    if not isinstance(watches, list) or not all(isinstance(w, dict) for w in watches):
        raise errors.BadRequest("watches must be a list of objects")
    for w in watches:
        memory.check_pid(w.get("pid"))
    if len(json.dumps(payload)) > VIEW_MAX_BYTES:
        raise errors.BadRequest(f"a view may be at most {VIEW_MAX_BYTES} bytes")
    return payload


def parse_draw(payload: object) -> list[str]:
    """``{"fields": [...]}``: the sample fields the page draws now (its metric's series)."""
    fields = payload.get("fields") if isinstance(payload, dict) else None
    if not isinstance(fields, list) or not all(f in DRAWABLE for f in fields):
        raise errors.BadRequest(
            f'a draw is an object like {{"fields": ["rss"]}}, of {", ".join(DRAWABLE)}'
        )
    return fields


def role() -> str:
    return get_memdash().roles.get(request.sid, access.AUDIENCE)


def register(socketio: SocketIO, replay: ReplaySource | None = None) -> None:
    """The handlers; with ``replay`` (memdash open) watches read the recording, not /proc."""
    limiter = RateLimiter()
    admit = threading.Lock()  # the viewer count and the new viewer, checked as one step

    def handler(event: str, *, audience: bool = False):
        """Register an event handler behind the role door, with errors as acks."""

        def wrap(fn):
            @functools.wraps(fn)
            def run(*args):
                try:
                    if not audience and role() != access.PRESENTER:
                        raise errors.PresenterOnly(f"only the presenter may send {event!r}")
                    return fn(*args)
                except errors.MemdashError as e:
                    return e.body()
                except Exception as e:  # keep the server up for everyone else
                    log.exception("socket handler %s failed", event)
                    return errors.Internal(f"internal error: {e}").body()

            socketio.on_event(event, run)
            return run

        return wrap

    @socketio.on("connect")
    def connect(auth=None):
        memdash = get_memdash()
        who = request.environ.get(access.ROLE_KEY, access.AUDIENCE)
        with admit:
            if len(memdash.roles) >= current_app.config["MAX_VIEWERS"]:
                refused = errors.TooManyViewers(
                    f"memdash already has {len(memdash.roles)} viewers; try again later"
                )
                raise ConnectionRefusedError(refused.message, refused.body())
            memdash.roles[request.sid] = who
        memdash.start()
        hello = {"role": who, "shared": memdash.access.shared}
        emit("hello", {**hello, "recording": memdash.recording_status(),
                       "replay": replay.state() if replay else None})  # fmt: skip
        if replay is not None:
            replay.greet(request.sid)  # the runs, marks and tool results up to the cursor
        if who == access.AUDIENCE:
            join_room(AUDIENCE_ROOM)
            if memdash.view is not None:
                emit("view", memdash.view)
        if memdash.sampler.last_system is not None:
            emit("system", memdash.sampler.last_system)

    @socketio.on("disconnect")
    def disconnect(*reason):
        log.info("viewer %s disconnected: %s", request.sid, reason[0] if reason else "")
        memdash = get_memdash()
        memdash.roles.pop(request.sid, None)
        limiter.forget(request.sid)
        (replay or memdash.sampler).release(request.sid)

    @handler("watch", audience=True)
    def watch(payload=None):
        limiter.take(request.sid)
        pid, children, since = parse_watch(payload)
        window, max_points = parse_backfill(payload)
        memdash = get_memdash()
        memdash.check_shown(pid, role())
        limit = current_app.config["MAX_WATCHES"]
        target = (replay or memdash.sampler).watch(pid, children, request.sid, limit=limit)
        # The socket receives batches from now on; the history is read after: a sample may
        # arrive twice, never be missed. A long history comes as at most max_points samples
        # (min and max per bucket, so spikes stay), shared by every viewer who asks the same.
        samples, bucket = shared_backfill(target, since, window, max_points)
        ack = {
            "pid": pid,
            "children": children,
            "process": memdash.public(target.describe()),
            "samples": samples,
            "bucket": bucket,
        }
        if target.tree is not None:  # its members, each with its history, and their ranking
            ack.update(
                trees.acked(target, memdash.growth_of, memdash.public, since, window, max_points)
            )
        return ack

    @handler("unwatch", audience=True)
    def unwatch(payload=None):
        limiter.take(request.sid)
        pid, children, _since = parse_watch(payload)
        if not (replay or get_memdash().sampler).unwatch(pid, children, request.sid):
            raise errors.NotWatching(f"this viewer is not watching pid {pid}")
        return {"pid": pid, "ok": True}

    @handler("draw", audience=True)
    def draw(payload=None):
        """What this page draws: the detail figures (smaps_rollup, the costly read) of what it
        watches are read every detail period while it draws one, less often otherwise."""
        detail = bool(set(parse_draw(payload)) & set(memory.DETAIL_FIELDS))
        if replay is None:
            get_memdash().sampler.draws_detail(request.sid, detail)
        return {"ok": True, "detail": detail}

    @handler("view")
    def view(payload=None):
        """The presenter's screen changed: keep it, and relay it to the audience."""
        shown = parse_view(payload)
        memdash = get_memdash()
        memdash.set_view(shown)
        memdash.socketio.emit("view", shown, to=AUDIENCE_ROOM)
        return {"ok": True}

    if replay is not None:
        replay_events.register(handler, replay)  # seek, play, pause

    @socketio.on("*")
    def unknown(event, *_args):
        """Events nobody handles get an error ack instead of silence."""
        return errors.UnknownEvent(
            f"unknown event {event!r}; memdash knows watch, unwatch, draw and view"
        ).body()
