"""The ``memdash`` command line: ``memdash [options]`` serves the dashboard (cli/serve.py);
``memdash <command> ...`` runs one subcommand, one module each under dashboard/cli/.

A subcommand's module is imported only when it runs, so a command that needs no web server
(export, sessions, ...) never loads Flask. Each module has ``main(argv) -> exit code``.
"""

from __future__ import annotations

import importlib
import sys

# name -> module under dashboard.cli, each with main(argv) -> exit code
SUBCOMMANDS = {
    "run": "run",
    "record": "record",
    "export": "export",
    "report": "report",
    "sessions": "sessions",
    "open": "open",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(f"{__name__}.{SUBCOMMANDS[argv[0]]}")
        return module.main(argv[1:])
    from . import serve

    return serve.main(argv)
