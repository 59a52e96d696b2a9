"""``memdash sessions [--dir DIR] [--keep N] [--max-size SIZE]``: list the recordings in the
sessions directory ($XDG_DATA_HOME/memdash/sessions), newest first; ``--keep`` and
``--max-size`` delete the oldest (never one being recorded). Bad input: one line, exit 2."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from ..sessions import list_sessions, prune, sessions_dir
from .export import Parser, UsageError, run

UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5GiB``, ``10000`` (bytes); K, M, G, T are powers of 1024."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not found:
        raise UsageError(f"--max-size {text!r}: give a size such as 500M or 2G")
    return int(float(found[1]) * UNITS[found[2].lower()])


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def length(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _sessions(argv: list[str]) -> int:
    parser = Parser(prog="memdash sessions",
                    description="List (and prune) recorded sessions.")  # fmt: skip
    parser.add_argument("--dir", default=None, help=f"default {sessions_dir()}")
    parser.add_argument("--keep", default=None, metavar="N", help="keep the newest N")
    parser.add_argument("--max-size", default=None, metavar="SIZE",
                        help="delete the oldest until all fit in SIZE (e.g. 2G)")  # fmt: skip
    args = parser.parse_args(argv)
    directory = Path(args.dir) if args.dir else sessions_dir()
    keep = None
    if args.keep is not None:
        if not args.keep.isdigit():
            raise UsageError(f"--keep must be a whole number of sessions, got {args.keep!r}")
        keep = int(args.keep)
    max_size = None if args.max_size is None else parse_size(args.max_size)
    if keep is not None or max_size is not None:
        for path in prune(directory, keep=keep, max_size=max_size):
            print(f"memdash: deleted {path}", file=sys.stderr)
    found = list_sessions(directory)
    if not found:
        print(f"no recordings in {directory}", file=sys.stderr)
        return 0
    print(f"{'start':<19}  {'length':>9}  {'processes':>9}  {'size':>10}  file")
    for s in found:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["start"]))
        if "error" in s:
            print(f"{start:<19}  {'?':>9}  {'?':>9}  {human(s['size']):>10}  {s['path']}"
                  f"  ({s['error']})")  # fmt: skip
            continue
        print(f"{start:<19}  {length(s['length']):>9}  {s['processes']:>9}  "
              f"{human(s['size']):>10}  {s['path']}")  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    return run(_sessions, argv)
