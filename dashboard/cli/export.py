"""``memdash export FILE --format csv|json|html -o OUT [--pid PID ...] [--since T] [--until T]``
and the helpers the other file commands share (opening a recording, one-line errors).

A time is epoch seconds, an ISO 8601 date and time (local time unless it says otherwise), or
``+S``: S seconds after the recording's first sample. Any bad input (a missing, truncated or
non-SQLite file, a newer schema, a bad option) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import datetime
import sys

from .. import errors, memory
from ..export import to_csv, to_json
from ..recorded import Recording
from .common import UsageError

USAGE = "memdash export FILE --format csv|json|html -o OUT [--pid PID ...] [--since T] [--until T]"


class Parser(argparse.ArgumentParser):
    """argparse, but its errors are our one line and exit code 2 (argparse's own is 2 too,
    with the usage first: fine for --help, noisy for a typo)."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def parse_time(text: str | None, rec: Recording, name: str) -> float | None:
    if text is None:
        return None
    try:
        if text.startswith("+"):
            return rec.time_range()[0] + float(text[1:])
        try:
            return float(text)
        except ValueError:
            return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(
            f"{name} {text!r}: give epoch seconds, an ISO date and time, or +S"
        ) from None


def parse_pids(texts: list[str]) -> list[int] | None:
    try:
        return [memory.parse_pid(text) for text in texts] or None
    except errors.MemdashError as e:
        raise UsageError(f"--pid: {e.message}") from None


def open_recording(path: str) -> Recording:
    try:
        return Recording(path)
    except errors.MemdashError as e:
        raise UsageError(e.message) from None


def run(fn, argv: list[str]) -> int:
    """Call ``fn(argv)``: UsageError, a memdash error or an OS error become one line, exit 2."""
    try:
        return fn(argv)
    except UsageError as e:
        message = str(e)
    except errors.MemdashError as e:
        message = e.message
    except OSError as e:
        message = f"{e.filename or ''}: {e.strerror}".lstrip(": ")
    print(f"memdash: error: {message}", file=sys.stderr)
    return 2


def _export(argv: list[str]) -> int:
    parser = Parser(prog="memdash export", usage=USAGE,
                    description="Export a recording to CSV, JSON or an HTML report.")  # fmt: skip
    parser.add_argument("file")
    parser.add_argument("--format", choices=("csv", "json", "html"), default=None)
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="'-' for stdout")
    parser.add_argument("--pid", action="append", default=[], metavar="PID")
    parser.add_argument("--since", default=None, metavar="T")
    parser.add_argument("--until", default=None, metavar="T")
    args = parser.parse_args(argv)
    fmt = args.format or args.output.rpartition(".")[2].lower()
    if fmt not in ("csv", "json", "html"):
        raise UsageError("export: give --format csv, json or html")
    pids = parse_pids(args.pid)
    with open_recording(args.file) as rec:
        since = parse_time(args.since, rec, "--since")
        until = parse_time(args.until, rec, "--until")
        if fmt == "html":
            if pids or since is not None or until is not None:
                raise UsageError("export: --pid, --since and --until are for csv and json")
            from ..report import write_report

            size = write_report(rec, args.output)
            print(f"memdash: wrote {args.output} ({size / 2**20:.1f} MiB)", file=sys.stderr)
            return 0
        out = sys.stdout if args.output == "-" else args.output
        if fmt == "csv":
            count = to_csv(rec, out, pids, since, until)
            print(f"memdash: wrote {count} samples to {args.output}", file=sys.stderr)
        else:
            document = to_json(rec, out, pids, since, until)
            count = sum(len(s["samples"]) for s in document["series"])
            print(f"memdash: wrote {count} samples to {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    return run(_export, argv)
