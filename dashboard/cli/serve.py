"""``memdash [options]``: serve the dashboard on loopback and open it in a browser.

Usage errors (a port in use, a bad PID, an interval out of range, a process --inspect will not
touch) print one line and exit with code 2; Ctrl-C and SIGTERM stop the scenario workers and
exit cleanly. The pieces ``memdash run`` shares (options, checks, binding, the server) are
here too.
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
from urllib.parse import urlencode

from .. import __version__, access, assets, errors, inspector, memory, share, validate
from ..app import create_app
from ..inspector import InspectError, Inspector
from ..reporters import Receiver
from ..reporters.attach import attach_python
from ..reporters.sources import HeapSources

MIN_INTERVAL, MAX_INTERVAL = 0.02, 10.0
SUBCOMMANDS_HELP = (
    "other commands:\n"
    "  memdash run [options] -- CMD ARGS...   start a program with its Node/Python heap "
    "reported\n"
    "  memdash record -o FILE (--pid PID | -- CMD ARGS...)   record without a page\n"
    "  memdash export FILE --format csv|json|html -o OUT     export a recording\n"
    "  memdash report FILE -o report.html                    a self-contained HTML report\n"
    "  memdash sessions [--keep N] [--max-size SIZE]         list and prune recordings\n"
    "  memdash open FILE                                     replay a recording (read-only)\n"
)


class UsageError(Exception):
    pass


def add_dashboard_options(parser: argparse.ArgumentParser) -> None:
    """The options every command that serves the page takes."""
    parser.add_argument(
        "--host",
        default=None,
        help="address to bind (default 127.0.0.1; with --share every interface). Any address "
        "beyond loopback turns the presenter token on",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        help="let a room follow: bind every interface, print the presenter and audience URLs "
        "and a QR code; the audience is read-only",
    )
    parser.add_argument(
        "--max-viewers",
        default="200",
        help="Socket.IO connections at once (1-10000, default 200); the next one is refused",
    )
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
        "--children",
        action="store_true",
        help="with --pid: watch each process with all its descendants (one line each plus "
        "the total), as they come and go",
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
    parser.add_argument(
        "--record",
        metavar="PATH",
        help="record the session to PATH (default: a new file in "
        "$XDG_DATA_HOME/memdash/sessions; list them with `memdash sessions`)",
    )
    parser.add_argument("--no-record", action="store_true", help="don't record this session")
    parser.add_argument("--no-browser", action="store_true", help="don't open a browser")
    parser.add_argument("--version", action="version", version=f"memdash {__version__}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="memdash",
        description="Live process memory in your browser, and a leak lab.",
        epilog=SUBCOMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dashboard_options(parser)
    parser.add_argument(
        "--inspect",
        action="store_true",
        help="with --pid of a running node: open its inspector (SIGUSR1) and show its JS heap; "
        "closed again on exit",
    )
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> dict:
    """Validate the options; returns the settings (``interval``, ``detail_interval``,
    ``history``, ``port``, ``max_viewers``, ``pids``). Raises UsageError."""
    if args.host is None:
        args.host = "0.0.0.0" if args.share else "127.0.0.1"
    try:
        interval = validate.number_text(args.interval, "--interval", MIN_INTERVAL, MAX_INTERVAL)
        settings = {
            "interval": interval,
            "detail_interval": validate.number_text(
                args.detail_interval, "--detail-interval", interval, 60
            ),
            "history": validate.number_text(args.history, "--history", 10, 86400),
            "port": validate.number_text(args.port, "--port", 0, 65535, integer=True),
            "max_viewers": validate.number_text(
                args.max_viewers, "--max-viewers", 1, 10000, integer=True
            ),
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


def attach_inspectors(pids: list[int], heaps: HeapSources, on_heap) -> None:
    """``--inspect``: attach to each pid, every one checked before any is signalled. Node:
    its inspector (CDP); Python >= 3.14 on both sides: the reporter through sys.remote_exec.
    UsageError with the one-line reason; those already attached are detached again."""
    runtimes = {}
    for pid in pids:
        try:
            runtimes[pid] = inspector.runtime_of(pid)
            reason = inspector.python_attach_message(pid) if runtimes[pid] == "python" else ""
        except InspectError as e:
            reason = str(e)
        if reason:
            raise UsageError(f"--inspect {pid}: {reason}")
    for pid in pids:
        try:
            if runtimes[pid] == "python":
                if heaps.receiver is None:
                    heaps.receiver = Receiver(on_heap).start()
                attach_python(pid, heaps.receiver.path)
                print(f"memdash: asked python {pid} to report its heap", file=sys.stderr)
                continue
            heaps.inspectors[pid] = Inspector(pid, on_heap).attach()
        except (InspectError, OSError, RuntimeError) as e:
            heaps.close()
            raise UsageError(f"--inspect {pid}: {e}") from None
        status = heaps.inspectors[pid].status()
        how = "opened" if status["opened_by_memdash"] else "already open"
        print(
            f"memdash: attached to node {pid} (inspector {how} on 127.0.0.1:{status['port']})",
            file=sys.stderr,
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = check_args(args)
        if args.inspect and not settings["pids"]:
            raise UsageError("--inspect needs --pid PID (a running node program)")
        sock = bind_socket(args.host, settings["port"])
    except UsageError as e:
        print(f"memdash: error: {e}", file=sys.stderr)
        return 2
    missing = assets.missing()
    if missing:
        print(f"memdash: warning: {', '.join(missing)} missing; run `make setup`", file=sys.stderr)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app, policy, room = build_app(args, settings, sock, settings["pids"])
    except errors.MemdashError as e:
        print(f"memdash: error: {e.message}", file=sys.stderr)
        sock.close()
        return 2
    memdash = app.extensions["memdash"]  # the extension (dashboard.extension.Memdash)
    heaps = heap_sources(app)
    if args.inspect:
        try:
            attach_inspectors(settings["pids"], heaps, memdash.sampler.add_extra)
        except UsageError as e:
            print(f"memdash: error: {e}", file=sys.stderr)
            discard_recording(app)
            sock.close()
            return 2
    memdash.start()
    if memdash.recorder is not None:
        print(f"memdash: recording to {memdash.recorder.path}", file=sys.stderr, flush=True)

    pinned = "cpid" if args.children else "pid"  # the page's name for a watch with children
    url = announce(args, sock, policy, room, [(pinned, pid) for pid in settings["pids"]])
    open_browser(args, url)

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
        heaps.close()
        memdash.stop()
    return 0


def make_server(app, sock: socket.socket):
    """Werkzeug's threaded server on the already-bound socket (WebSocket through
    simple-websocket), which is what Flask-SocketIO's threading mode runs on."""
    from werkzeug.serving import make_server as werkzeug_server

    host, port = sock.getsockname()[:2]
    return werkzeug_server(host, port, app, threaded=True, fd=sock.fileno())


def serve(app, sock: socket.socket) -> None:
    """Serve on the already-bound socket until interrupted."""
    make_server(app, sock).serve_forever()
