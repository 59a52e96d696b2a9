"""Start memdash's Python reporter inside a running interpreter (PEP 768, Python >= 3.14).

``sys.remote_exec(pid, script)`` asks the target to run ``script`` at its next safe point; the
script puts this package's ``python`` directory on the target's path and starts the reporter
towards a receiver's socket. Both interpreters must be 3.14 or newer (the caller checks, with
``dashboard.inspector.python_attach_message``).
"""

from __future__ import annotations

import os
import sys

from dashboard.reporters.env import PYTHON_DIR


def attach_python(pid: int, socket_path: str) -> str:
    """Ask ``pid`` to start reporting to ``socket_path``; returns the script's path (kept next
    to the socket, in the receiver's private directory, until the receiver stops)."""
    script = os.path.join(os.path.dirname(socket_path), f"attach-{pid}.py")
    with open(script, "w", encoding="utf-8") as f:
        f.write(
            "import sys\n"
            f"if {str(PYTHON_DIR)!r} not in sys.path:\n"
            f"    sys.path.append({str(PYTHON_DIR)!r})\n"
            "import _memdash_reporter\n"
            f"_memdash_reporter.start(path={socket_path!r}, traced=False)\n"
        )
    sys.remote_exec(pid, script)  # Python >= 3.14 only; raises OSError/RuntimeError otherwise
    return script
