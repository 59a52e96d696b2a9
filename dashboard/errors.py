"""The one error shape memdash speaks: ``{"error": {"code": ..., "message": ...}}``.

Every code the server can send is one class here, and :data:`CODES` lists them all with their
HTTP status and meaning (docs/architecture.md names the same list; tests/test_errors_doc.py
keeps the two in step). Every layer raises these; the REST handlers turn one into a JSON
response with its ``status``, the Socket.IO handlers return ``body()`` as the ack.
"""

from __future__ import annotations

# code -> (HTTP status, meaning), filled in by every class below that declares a code.
CODES: dict[str, tuple[int, str]] = {}


class MemdashError(Exception):
    """A client-facing error with a stable code and an HTTP status. Raise a subclass that
    declares its own ``code``; the bases without one only group codes by status."""

    code: str = ""
    status: int = 500

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            meaning = " ".join((cls.__doc__ or "").split())
            CODES[cls.code] = (cls.status, meaning)

    def __init__(self, message: str):
        if type(self).code not in CODES:
            raise TypeError(f"{type(self).__name__} declares no error code; raise a subclass")
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


# -- 400 ----------------------------------------------------------------------------------


class BadRequest(MemdashError):
    """A malformed request: bad JSON, a missing field, a number out of range."""

    code, status = "bad_request", 400


class BadPid(BadRequest):
    """Not a PID: not an integer, or out of range; or not one of the run's processes (lab
    tools)."""

    code = "bad_pid"


class KernelThread(BadRequest):
    """A kernel thread: it has no user memory to plot."""

    code = "kernel_thread"


class BadParams(BadRequest):
    """Scenario parameters the catalogue refuses."""

    code = "bad_params"


class UnknownEvent(BadRequest):
    """A Socket.IO event memdash does not handle."""

    code = "unknown_event"


class BadRecording(BadRequest):
    """The file is not a memdash recording (not SQLite, truncated, another program's)."""

    code = "bad_recording"


class RecordingTooNew(BadRequest):
    """The recording was written by a newer memdash than this one."""

    code = "recording_too_new"


# -- 403 ----------------------------------------------------------------------------------


class AccessDenied(MemdashError):
    """The process belongs to another user."""

    code, status = "access_denied", 403


class BadHost(MemdashError):
    """A Host name that is not one of this machine's own names (DNS rebinding)."""

    code, status = "bad_host", 403


class BadOrigin(MemdashError):
    """A browser page that memdash did not serve (its Origin) tried to reach it."""

    code, status = "bad_origin", 403


class BadToken(MemdashError):
    """A presenter link whose token is wrong or from an earlier start of memdash."""

    code, status = "bad_token", 403


class PresenterOnly(MemdashError):
    """Only the presenter may do this; the audience follows read-only."""

    code, status = "presenter_only", 403


class NotShown(MemdashError):
    """The audience may watch only the processes the presenter shows."""

    code, status = "not_shown", 403


# -- 404 ----------------------------------------------------------------------------------


class NotFound(MemdashError):
    """No such route, asset or heap snapshot."""

    code, status = "not_found", 404


class NoSuchProcess(NotFound):
    """No process with that PID."""

    code = "no_such_process"


class UnknownScenario(NotFound):
    """No scenario with that id."""

    code = "unknown_scenario"


class UnknownRun(NotFound):
    """No run with that id."""

    code = "unknown_run"


class NotWatching(NotFound):
    """unwatch of a process this viewer does not watch."""

    code = "not_watching"


# -- 405, 415 -----------------------------------------------------------------------------


class MethodNotAllowed(MemdashError):
    """The route exists, the method does not."""

    code, status = "method_not_allowed", 405


class UnsupportedMediaType(MemdashError):
    """A POST whose body is not JSON (a plain form from another page)."""

    code, status = "unsupported_media_type", 415


# -- 409 ----------------------------------------------------------------------------------


class Conflict(MemdashError):
    status = 409


class ZombieProcess(Conflict):
    """The process has exited and waits to be reaped."""

    code = "zombie"


class ProcessGone(Conflict):
    """The process exited while being read (or its PID now belongs to another)."""

    code = "process_gone"


class RunEnded(Conflict):
    """The run has already ended."""

    code = "run_ended"


class RecordingLocked(Conflict):
    """Another memdash is recording to this file."""

    code = "recording_locked"


class Replaying(Conflict):
    """A recording is open (`memdash open`): it is read-only, nothing can start or change."""

    code = "replaying"


# -- 429 ----------------------------------------------------------------------------------


class TooMany(MemdashError):
    status = 429


class TooManyWatches(TooMany):
    """This viewer already watches the most processes a viewer may."""

    code = "too_many_watches"


class TooManyRuns(TooMany):
    """Too many runs at once, or their memory caps would pass memdash's budget."""

    code = "too_many_runs"


class TooManyTargets(TooMany):
    """All viewers together already watch the most processes the server samples."""

    code = "too_many_targets"


class TooManyViewers(TooMany):
    """The server already has --max-viewers connections."""

    code = "too_many_viewers"


class RateLimited(TooMany):
    """Too many requests from one viewer in a short time; slow down."""

    code = "rate_limited"


# -- 5xx ----------------------------------------------------------------------------------


class Internal(MemdashError):
    """A bug in memdash; the server log has the traceback."""

    code, status = "internal", 500


class Unavailable(MemdashError):
    """Something memdash needs is missing or did not answer (node, redis, an asset, a worker)."""

    code, status = "unavailable", 503
