"""Third-party JS the page needs, served from this machine (workshop rooms are offline).

Plotly comes from the installed ``plotly`` Python package; the Socket.IO client is copied from
npm's ``socket.io-client`` into ``dashboard/_assets/`` at set-up (and shipped in the wheel).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def socketio_js() -> Path:
    return PACKAGE_DIR / "_assets" / "socket.io.min.js"


ASSETS = {"plotly.min.js": plotly_js, "socket.io.min.js": socketio_js}


def missing() -> list[str]:
    """Names of assets that are not on disk (set-up not run)."""
    return [name for name, find in ASSETS.items() if not find().is_file()]


def web_dir(name: str) -> Path:
    """``static`` or ``templates``: inside the package when installed from a wheel, else the
    top of the source tree."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name
