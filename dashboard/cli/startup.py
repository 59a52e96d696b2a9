"""Starting the web server, for the commands that serve the page (``memdash``, ``memdash
run``, ``memdash open``): bind first (a port in use is a usage error before anything starts),
build the app with its recorder, print where it serves, open the browser, serve.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

from .. import __version__, access, assets, errors, share
from ..app import create_app
from ..reporters.sources import HeapSources
from .common import UsageError


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind now, so a port in use is a clear error before anything starts."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use; pick another with --port") from None
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def build_app(args: argparse.Namespace, settings: dict, sock: socket.socket, pinned: list[int]):
    """The app for these settings on ``sock``: (app, access policy, room URLs or None)."""
    port = sock.getsockname()[1]
    policy = access.Access.for_bind(args.host, args.share, port)
    room = share.urls(args.host, port, policy.token) if policy.shared else None
    recorder = open_recorder(args, settings)
    app = create_app(
        {
            "INTERVAL": settings["interval"],
            "DETAIL_INTERVAL": settings["detail_interval"],
            "BACKGROUND_DETAIL_INTERVAL": settings["background_detail_interval"],
            "HISTORY_SECONDS": settings["history"],
            "PINNED_PIDS": pinned,
            "PINNED_CHILDREN": getattr(args, "children", False),
            "MAX_VIEWERS": settings["max_viewers"],
            "ACCESS": policy,
            "SHARE_URLS": room,
            "RECORDER": recorder,
        }
    )
    return app, policy, room


def open_recorder(args: argparse.Namespace, settings: dict):
    """Every dashboard session is recorded (``--no-record`` to not): to ``--record PATH`` or
    a new file in the sessions directory. Raises memdash errors (e.g. the file is being
    recorded by another memdash) for the caller to print as one line."""
    if args.no_record:
        return None
    from ..recording import Recorder
    from ..sessions import default_session_path

    path = args.record or default_session_path()
    return Recorder(path, interval=settings["interval"])


def discard_recording(app) -> None:
    """memdash is not starting after all (a refused --inspect): no empty session is left."""
    recorder = app.extensions["memdash"].recorder
    if recorder is not None:
        recorder.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{recorder.path}{suffix}").unlink(missing_ok=True)


def heap_sources(app) -> HeapSources:
    """The app's registry of language-heap sources (``memdash.heaps``)."""
    return app.extensions["memdash"].heaps


def start_up(args: argparse.Namespace, settings: dict, sock: socket.socket):
    """Warn of missing page assets, log to stderr, build the app (:func:`build_app`). A
    memdash error (e.g. the recording is locked) closes ``sock`` and is a UsageError."""
    missing = assets.missing()
    if missing:
        print(f"memdash: warning: {', '.join(missing)} missing; run `make setup`", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return build_app(args, settings, sock, settings["pids"])
    except errors.MemdashError as e:
        sock.close()
        raise UsageError(e.message) from None


def start_memdash(memdash) -> None:
    """Start sampling (and recording: say where)."""
    memdash.start()
    if memdash.recorder is not None:
        print(f"memdash: recording to {memdash.recorder.path}", file=sys.stderr, flush=True)


def announce(args, sock, policy, room, query: list, out=sys.stdout) -> str:
    """Print where memdash serves (and the room's URLs); returns the URL this laptop's browser
    opens (with the presenter token when shared)."""
    port = sock.getsockname()[1]
    local = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    shown_host = f"[{local}]" if ":" in local else local
    url = f"http://{shown_host}:{port}/" + (f"?{urlencode(query)}" if query else "")
    print(f"memdash {__version__} serving on {url}", file=out, flush=True)
    if policy.shared:  # this laptop's browser is the presenter's (the token is not printed here)
        url += ("&" if query else "?") + urlencode([("token", policy.token)])
    if room is not None:
        print(
            f"presenter: {room['presenter']}\naudience:  {room['audience']}", file=out, flush=True
        )
        print(share.qr_text(room["audience"]), file=out, flush=True)
        print(
            "memdash: the audience link is read-only; keep the presenter link to yourself",
            file=sys.stderr,
        )
    return url


def open_browser(args, url: str) -> None:
    if not args.no_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()


def make_server(app, sock: socket.socket):
    """Werkzeug's threaded server on the already-bound socket (WebSocket through
    simple-websocket), which is what Flask-SocketIO's threading mode runs on."""
    from werkzeug.serving import make_server as werkzeug_server

    host, port = sock.getsockname()[:2]
    return werkzeug_server(host, port, app, threaded=True, fd=sock.fileno())


def serve(app, sock: socket.socket) -> None:
    """Serve on the already-bound socket until interrupted."""
    make_server(app, sock).serve_forever()


def serve_until_stopped(app, sock: socket.socket, cleanup: Callable[[], None]) -> None:
    """Serve until Ctrl-C or SIGTERM, then ``cleanup()`` (a second TERM does not cut it short)."""

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        serve(app, sock)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("memdash: shutting down", file=sys.stderr, flush=True)
        cleanup()
