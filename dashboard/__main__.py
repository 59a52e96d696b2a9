"""The ``memdash`` command: serve the dashboard on loopback and open it in a browser.

Usage errors (a port in use, a bad PID, an interval out of range) print one line and exit
with code 2; Ctrl-C and SIGTERM stop the scenario workers and exit cleanly.
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
from urllib.parse import urlencode

from . import __version__, assets, errors, memory, validate
from .app import create_app

MIN_INTERVAL, MAX_INTERVAL = 0.02, 10.0


class UsageError(Exception):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="memdash", description="Live process memory in your browser, and a leak lab."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    # Numbers are taken as text and checked by check_args: one error style, one line.
    parser.add_argument("--port", default="8765", help="port (default 8765; 0 = any free)")
    parser.add_argument(
        "--pid",
        action="append",
        default=[],
        metavar="PID",
        help="watch this process from the start (repeatable)",
    )
    parser.add_argument(
        "--interval",
        default="0.1",
        help=f"seconds between samples ({MIN_INTERVAL}-{MAX_INTERVAL}, default 0.1)",
    )
    parser.add_argument(
        "--detail-interval",
        default="1",
        help="seconds between USS/PSS/swap reads (default 1)",
    )
    parser.add_argument(
        "--history",
        default="1800",
        help="seconds of samples kept per watched process (10-86400, default 1800)",
    )
    parser.add_argument("--no-browser", action="store_true", help="don't open a browser")
    parser.add_argument("--version", action="version", version=f"memdash {__version__}")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> dict:
    """Validate the options; returns the settings (``interval``, ``detail_interval``,
    ``history``, ``port``, ``pids``). Raises UsageError."""
    try:
        interval = validate.number_text(args.interval, "--interval", MIN_INTERVAL, MAX_INTERVAL)
        settings = {
            "interval": interval,
            "detail_interval": validate.number_text(
                args.detail_interval, "--detail-interval", interval, 60
            ),
            "history": validate.number_text(args.history, "--history", 10, 86400),
            "port": validate.number_text(args.port, "--port", 0, 65535, integer=True),
        }
    except errors.MemdashError as e:
        raise UsageError(e.message) from None
    pids = []
    for text in args.pid:
        try:
            pid = memory.parse_pid(text)
            memory.identify(pid)
            memory.read_detail(pid)
        except errors.MemdashError as e:
            raise UsageError(f"--pid {text}: {e.message}") from None
        pids.append(pid)
    return {**settings, "pids": pids}


def allowed_hosts(host: str) -> tuple[str, ...] | None:
    """Loopback names, plus the address asked for; any host when bound to every address."""
    if host in ("0.0.0.0", "::", ""):
        return None
    return ("127.0.0.1", "localhost", "::1", host.strip("[]"))


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = check_args(args)
        sock = bind_socket(args.host, settings["port"])
    except UsageError as e:
        print(f"memdash: error: {e}", file=sys.stderr)
        return 2
    missing = assets.missing()
    if missing:
        print(f"memdash: warning: {', '.join(missing)} missing; run `make setup`", file=sys.stderr)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app(
        {
            "INTERVAL": settings["interval"],
            "DETAIL_INTERVAL": settings["detail_interval"],
            "HISTORY_SECONDS": settings["history"],
            "PINNED_PIDS": settings["pids"],
            "ALLOWED_HOSTS": allowed_hosts(args.host),
        }
    )
    memdash = app.extensions["memdash"]  # the extension (dashboard.extension.Memdash)
    memdash.start()

    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    query = urlencode([("pid", pid) for pid in settings["pids"]])
    url = f"http://{shown_host}:{port}/" + (f"?{query}" if query else "")
    print(f"memdash {__version__} serving on {url}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            "memdash: warning: listening beyond loopback; anyone who can reach this "
            "address can start scenarios",
            file=sys.stderr,
        )
    if not args.no_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        serve(app, sock)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut cleanup short
        print("memdash: shutting down", file=sys.stderr, flush=True)
        memdash.stop()
    return 0


def serve(app, sock: socket.socket) -> None:
    """Serve on the already-bound socket with Werkzeug's threaded server (WebSocket through
    simple-websocket), which is what Flask-SocketIO's threading mode runs on."""
    from werkzeug.serving import make_server

    host, port = sock.getsockname()[:2]
    server = make_server(host, port, app, threaded=True, fd=sock.fileno())
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
