"""``memdash report FILE -o report.html``: a self-contained HTML report (dashboard/report.py)
that opens offline. Bad input: one line, exit code 2."""

from __future__ import annotations

import sys

from ..report import write_report
from .export import Parser, open_recording, run


def _report(argv: list[str]) -> int:
    parser = Parser(prog="memdash report", usage="memdash report FILE -o report.html",
                    description="A self-contained HTML report of a recording.")  # fmt: skip
    parser.add_argument("file")
    parser.add_argument("-o", "--output", required=True, metavar="OUT")
    args = parser.parse_args(argv)
    with open_recording(args.file) as rec:
        size = write_report(rec, args.output)
    print(f"memdash: wrote {args.output} ({size / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    return run(_report, argv)
