"""The one error shape memdash speaks: ``{"error": {"code": ..., "message": ...}}``.

Every layer raises a :class:`MemdashError` subclass; the REST blueprint turns it into a JSON
response with ``status`` and the Socket.IO handlers return ``body()`` as the ack.
"""

from __future__ import annotations


class MemdashError(Exception):
    """Base class: a client-facing error with a stable code and an HTTP status."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(MemdashError):
    code, status = "bad_request", 400


class BadPid(BadRequest):
    code = "bad_pid"


class KernelThread(BadRequest):
    code = "kernel_thread"


class AccessDenied(MemdashError):
    code, status = "access_denied", 403


class NotFound(MemdashError):
    code, status = "not_found", 404


class NoSuchProcess(NotFound):
    code = "no_such_process"


class Conflict(MemdashError):
    code, status = "conflict", 409


class ZombieProcess(Conflict):
    code = "zombie"


class ProcessGone(Conflict):
    """The process we were reading exited (or its PID now belongs to another process)."""

    code = "process_gone"


class TooMany(MemdashError):
    code, status = "too_many", 429


class Unavailable(MemdashError):
    code, status = "unavailable", 503


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
