"""``memdash open FILE``: serve the page over a recording, read-only, with a time cursor
(play at 1x or 10x, pause, seek: dashboard/replay.py).

Binds loopback like ``memdash`` itself (``--host``/``--share`` for a room), records nothing
and samples nothing. A file that is missing, not SQLite, truncated or of a newer schema, or a
bad option, is one line on stderr and exit code 2, as for ``memdash export``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import access, errors, share, validate
from ..app import create_app
from .common import UsageError, fail
from .export import Parser, open_recording
from .startup import announce, bind_socket, open_browser, serve_until_stopped

USAGE = "memdash open FILE [--port N] [--host H] [--share] [--max-viewers N] [--no-browser]"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog="memdash open", usage=USAGE,
                    description="Replay a recording in the dashboard, read-only.")  # fmt: skip
    parser.add_argument("file", help="a recording (memdash sessions lists them)")
    # The serving options of `memdash` (serve.add_dashboard_options) less those about
    # sampling and recording, which a replay does not do.
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--share", action="store_true",
                        help="let a room follow, read-only (see `memdash --help`)")  # fmt: skip
    parser.add_argument("--port", default="8765", help="port (default 8765; 0 = any free)")
    parser.add_argument("--max-viewers", default="200", help="connections at once (1-10000)")
    parser.add_argument("--no-browser", action="store_true", help="don't open a browser")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
        port = validate.number_text(args.port, "--port", 0, 65535, integer=True)
        viewers = validate.number_text(args.max_viewers, "--max-viewers", 1, 10000, integer=True)
        recording = open_recording(args.file)
    except (UsageError, errors.MemdashError) as e:
        return fail(e)
    args.host = args.host or ("0.0.0.0" if args.share else "127.0.0.1")
    try:
        sock = bind_socket(args.host, port)
    except UsageError as e:
        recording.close()
        return fail(e)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    port = sock.getsockname()[1]
    policy = access.Access.for_bind(args.host, args.share, port)
    room = share.urls(args.host, port, policy.token) if policy.shared else None
    app = create_app({"REPLAY": recording, "ACCESS": policy, "SHARE_URLS": room,
                      "MAX_VIEWERS": viewers})  # fmt: skip
    replay = app.extensions["memdash_replay"]
    replay.start()
    first, last = recording.time_range()
    print(f"memdash: replaying {recording.path} ({len(replay.series)} series, "
          f"{last - first:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    url = announce(args, sock, policy, room, [])
    open_browser(args, url)

    def cleanup() -> None:
        replay.stop()
        app.extensions["memdash"].stop()
        recording.close()

    serve_until_stopped(app, sock, cleanup)
    return 0
