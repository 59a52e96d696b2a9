"""Where recordings live ($XDG_DATA_HOME/memdash/sessions), listing and pruning them."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path

from . import errors
from .recfile import _inode, _recording_here
from .recorded import Recording


def sessions_dir() -> Path:
    """$XDG_DATA_HOME/memdash/sessions (the XDG default when unset or not absolute)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "memdash" / "sessions"


def default_session_path(now: float | None = None, directory: Path | None = None) -> Path:
    """<sessions dir>/<local start time>.sqlite, with -2, -3... if that name is taken."""
    directory = sessions_dir() if directory is None else Path(directory)
    stem = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(time.time() if now is None else now))
    path, n = directory / f"{stem}.sqlite", 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}.sqlite"
    return path


def _size(path: Path) -> int:
    """The file, its WAL and its artefacts, in bytes."""
    files = [path, Path(f"{path}-wal")] + [Path(a["path"]) for a in list_artefacts(path)]
    return sum(p.stat().st_size for p in files if p.exists())


def list_sessions(directory: Path | None = None) -> list[dict]:
    """Recordings in ``directory``, newest first: path, start, length (s), processes, size
    (bytes, with the WAL); a file that cannot be read is listed with its ``error``."""
    directory = sessions_dir() if directory is None else Path(directory)
    out = []
    for path in sorted(directory.glob("*.sqlite")) if directory.is_dir() else []:
        entry: dict = {"path": str(path), "size": _size(path)}
        try:
            with Recording(path) as rec:
                first, last = rec.time_range()
                entry.update(start=rec.meta["started_at"], length=max(0.0, last - first),
                             processes=len(rec.processes()))  # fmt: skip
        except errors.MemdashError as exc:
            entry.update(start=path.stat().st_mtime, error=exc.message)
        out.append(entry)
    return sorted(out, key=lambda e: e["start"], reverse=True)


def _in_use(path: Path) -> bool:
    if _inode(path) in _recording_here:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def prune(directory: Path | None = None, keep: int | None = None,
          max_size: int | None = None) -> list[Path]:  # fmt: skip
    """Delete the oldest recordings beyond the newest ``keep`` and beyond ``max_size`` bytes in
    all; a file being recorded is never deleted. Returns the deleted paths."""
    sessions = [s for s in list_sessions(directory) if not _in_use(Path(s["path"]))]
    doomed = sessions[keep:] if keep is not None else []
    if max_size is not None:
        total = 0
        for s in sessions:
            total += s["size"]
            if total > max_size and s not in doomed:
                doomed.append(s)
    removed = []
    for s in doomed:
        for suffix in ("", "-wal", "-shm"):
            Path(s["path"] + suffix).unlink(missing_ok=True)
        shutil.rmtree(artefact_dir(s["path"]), ignore_errors=True)
        removed.append(Path(s["path"]))
    return removed


# -- tool artefacts (heap snapshots, leak reports) kept with their session -------------------

ARTEFACTS_SUFFIX = ".artefacts"


def artefact_dir(session: str | os.PathLike, create: bool = False) -> Path:
    """The directory of a session's tool artefacts: ``FILE.artefacts/`` beside the recording
    (``s.sqlite`` -> ``s.sqlite.artefacts/``), private to its owner; pruning removes it with
    the session, memdash never deletes it on exit."""
    path = Path(f"{session}{ARTEFACTS_SUFFIX}")
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def list_artefacts(session: str | os.PathLike) -> list[dict]:
    """``[{"name", "size", "path", "t"}]`` of the session's artefacts, oldest first."""
    folder = artefact_dir(session)
    if not folder.is_dir():
        return []
    out = []
    for entry in folder.iterdir():
        if entry.is_file() and not entry.is_symlink():
            st = entry.stat()
            out.append({"name": entry.name, "size": st.st_size, "path": str(entry),
                        "t": st.st_mtime})  # fmt: skip
    return sorted(out, key=lambda a: (a["t"], a["name"]))


def artefact_path(session: str | os.PathLike, name: str) -> Path:
    """The artefact called ``name``, for a download: only a plain file name that is in the
    listing is accepted (no ``..``, no separator, no ``%2e%2e`` or other encoded form, no
    symlink); anything else is :class:`errors.NotFound`, saying as little as a missing file.
    """
    names = {a["name"] for a in list_artefacts(session)}
    if not isinstance(name, str) or name not in names or name != os.path.basename(name):
        raise errors.NotFound(f"no artefact {name!r} in this session")
    if name in (".", "..") or "/" in name or "\\" in name or "%" in name or "\0" in name:
        raise errors.NotFound(f"no artefact {name!r} in this session")
    return artefact_dir(session) / name
