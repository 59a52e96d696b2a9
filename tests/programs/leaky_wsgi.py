"""A tiny WSGI app for gunicorn, for tests of process trees: a pre-fork server whose workers
leak on request.

- ``GET /leak`` holds 256 KiB more (never freed) in ONE worker only: the one that holds an
  exclusive lock on the file named by $LEAK_LOCK (each worker tries to take it when it serves
  this route; the first one keeps it for its life). Other workers serve it without leaking.
- ``GET /leak-all`` holds 256 KiB more in whichever worker serves it.
- Anything else answers without holding anything.

Every answer is ``<pid> leaked`` or ``<pid> kept``: the test knows which worker leaks.
"""

import fcntl
import os

CHUNK = 256 * 1024
held = []
_lock = {"fd": None, "tried": False}


def _is_the_leaker() -> bool:
    if _lock["fd"] is None and not _lock["tried"]:
        _lock["tried"] = True
        fd = os.open(os.environ["LEAK_LOCK"], os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _lock["fd"] = fd  # kept open: the lock lasts as long as this worker
        except BlockingIOError:
            os.close(fd)
    return _lock["fd"] is not None


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    leak = path == "/leak-all" or (path == "/leak" and _is_the_leaker())
    if leak:
        held.append(b"x" * CHUNK)  # THE LEAK: touched bytes, never released
    body = f"{os.getpid()} {'leaked' if leak else 'kept'}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
