"""``python -m dashboard`` and the ``memdash`` console script: see dashboard/cli/."""

from __future__ import annotations

import sys

from .cli import main


def __getattr__(name: str):
    # bind_socket and serve lived here (benchmarks/_prefilled_server.py imports them); loaded
    # on use so that a subcommand without a server does not load Flask.
    if name in ("bind_socket", "serve"):
        from .cli import serve

        return getattr(serve, name)
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())
