"""The options of the commands that serve the page (``memdash`` and ``memdash run``), and
their checks: numbers are taken as text and checked here, one error style, one line
(:class:`dashboard.cli.common.UsageError`).
"""

from __future__ import annotations

import argparse

from .. import __version__, errors, validate
from .common import UsageError, check_pids

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
        help="seconds between USS/PSS/swap reads of a process while a viewer draws one of "
        "them (default 1)",
    )
    parser.add_argument(
        "--background-detail-interval",
        default="10",
        help="... while its viewers draw none of them, e.g. RSS (default 10; the recording "
        "and /metrics get them this often)",
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
            "background_detail_interval": validate.number_text(
                args.background_detail_interval, "--background-detail-interval", interval, 600
            ),
            "history": validate.number_text(args.history, "--history", 10, 86400),
            "port": validate.number_text(args.port, "--port", 0, 65535, integer=True),
            "max_viewers": validate.number_text(
                args.max_viewers, "--max-viewers", 1, 10000, integer=True
            ),
        }
    except errors.MemdashError as e:
        raise UsageError(e.message) from None
    return {**settings, "pids": check_pids(args.pid, detail=True)}
