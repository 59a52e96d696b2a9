"""memdash: a local web dashboard for live process memory, with a leak lab.

``dashboard.create_app(config)`` builds the web app (see :mod:`dashboard.app`);
``dashboard.get_memdash()`` is its extension (see :mod:`dashboard.extension`). Both are imported
lazily: scenario workers run as ``python -m dashboard.scenarios.X`` and must not pay for
importing Flask (about 40 MB and a quarter of a second per worker).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["create_app", "get_memdash", "__version__"]


def __getattr__(name: str):
    if name in ("create_app", "DEFAULTS"):
        from . import app

        return getattr(app, name)
    if name in ("get_memdash", "Memdash"):
        from . import extension

        return getattr(extension, name)
    raise AttributeError(f"module 'dashboard' has no attribute {name!r}")
