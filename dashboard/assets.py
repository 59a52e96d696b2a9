"""The page's files, served from this machine (workshop rooms are offline) and cheap to fetch
on a crowded Wi-Fi.

Plotly comes from the installed ``plotly`` Python package; the Socket.IO client is copied from
npm's ``socket.io-client`` into ``dashboard/_assets/`` at set-up (and shipped in the wheel).

Every file is served under one content-hashed prefix, ``/static/<version>/…`` (third-party
files under ``vendor/``), with a year-long immutable cache lifetime: a reload fetches only the
page shell, and the ES modules' relative imports inherit the prefix, so no build step rewrites
them. Each file is gzipped once, on first request, and kept in memory (plotly.min.js: 4.8 MB,
1.5 MB gzipped).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
VENDOR = "vendor/"


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


@dataclass(frozen=True)
class Asset:
    data: bytes
    gzipped: bytes
    mimetype: str


class AssetStore:
    """The page's files by URL path (``js/main.js``, ``vendor/plotly.min.js``), one version
    string for all of them, and each file's bytes and gzipped bytes, prepared once."""

    def __init__(self, static_dir: Path | None = None):
        root = static_dir or web_dir("static")
        self._paths: dict[str, Path] = {
            p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()
        }
        for name, find in ASSETS.items():
            self._paths[VENDOR + name] = find()
        digest = hashlib.sha256()
        for name, path in sorted(self._paths.items()):
            digest.update(name.encode())
            # Size and mtime stand in for the content of the large vendor files, which change
            # only when their package is upgraded; our own files are hashed whole.
            if name.startswith(VENDOR):
                stat = path.stat() if path.is_file() else None
                digest.update(repr(stat and (stat.st_size, stat.st_mtime_ns)).encode())
            else:
                digest.update(path.read_bytes())
        self.version = digest.hexdigest()[:12]
        self._cache: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def url(self, name: str) -> str:
        return f"/static/{self.version}/{name}"

    def get(self, name: str) -> Asset | None:
        """The file, or None when there is no such name (or it is missing on disk)."""
        asset = self._cache.get(name)
        if asset is not None:
            return asset
        path = self._paths.get(name)
        if path is None or not path.is_file():
            return None
        with self._lock:  # two first requests must not both compress 4.8 MB
            asset = self._cache.get(name)
            if asset is None:
                data = path.read_bytes()
                mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
                if name.endswith(".js"):
                    mimetype = "text/javascript"
                asset = Asset(data, gzip.compress(data, 6, mtime=0), mimetype)
                self._cache[name] = asset
        return asset

    def knows(self, name: str) -> bool:
        return name in self._paths
