"""Launch Debian's Chromium for Playwright tests.

Playwright's own browser downloads are not used (never run `playwright install`):
the system package `chromium` is driven through ``executable_path``. Set
``MEMDASH_CHROMIUM`` to use another binary.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CHROMIUM_DEFAULT = "/usr/bin/chromium"

# Headless in a container, with nothing that phones home: without the
# background-networking flags Chromium tries to reach Google's services and the
# closed network refuses, which slows start-up and fills the log.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    return os.environ.get("MEMDASH_CHROMIUM") or CHROMIUM_DEFAULT


def executable(path: str) -> str:
    """``path`` if it can be run, else the error that says how to get Chromium."""
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"Chromium not found at {path}; run `make test` (it installs Debian's "
            "chromium) or set MEMDASH_CHROMIUM to a Chromium binary"
        )
    return path


def launch_chromium(playwright, **kwargs):
    """Return a headless Playwright ``Browser`` running the system Chromium.

    ``playwright`` is the object from ``sync_playwright()`` (or the async one;
    then await the result). Extra keyword arguments go to ``launch``; ``executable_path``
    replaces the system Chromium (e.g. a wrapper that runs it in a network namespace).
    """
    path = executable(kwargs.pop("executable_path", None) or chromium_path())
    args = CHROMIUM_ARGS + list(kwargs.pop("args", []))
    kwargs.setdefault("headless", True)
    return playwright.chromium.launch(executable_path=path, args=args, **kwargs)


# Viewports the stage must work at: a 1280x720 projector, and the same projector at 150 %
# browser zoom (a CSS viewport of 853x480 drawn at 1.5 device pixels per CSS pixel).
PROJECTOR = {"viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1}
PROJECTOR_150 = {"viewport": {"width": 853, "height": 480}, "device_scale_factor": 1.5}


class Chromium:
    """Headless Chromium for one test module, opening a fresh tab per page (``new_page``).

    The tabs at one device scale factor share a persistent context whose profile directory,
    under ``profiles``, outlives the module: from a server's third page on, Plotly's 4.9 MB
    comes from the HTTP cache with V8's compiled code (an off-the-record context compiles it
    again for every page: the four browser modules took ~187 s so, ~130 s now). The tabs
    share cookies, storage and cache, as a person's browser does; the page keeps nothing but a
    per-tab sessionStorage key (and a cookie in room mode, which these tests do not use).
    """

    def __init__(self, playwright, profiles: Path):
        self.playwright = playwright
        self.profiles = profiles
        self._contexts: dict[float, object] = {}  # device scale factor -> persistent context

    def new_page(self, view: dict):
        scale = view.get("device_scale_factor", 1)
        context = self._contexts.get(scale)
        if context is None:
            context = self._contexts[scale] = self.playwright.chromium.launch_persistent_context(
                self.profiles / f"scale-{scale}",
                executable_path=executable(chromium_path()),
                args=CHROMIUM_ARGS,
                headless=True,
                viewport=view["viewport"],
                device_scale_factor=scale,
            )
            # Its first tab stays open: Chromium ends when its last window closes.
            context.keeper = context.pages[0] if context.pages else context.new_page()
        page = context.new_page()
        page.set_viewport_size(view["viewport"])
        page.is_tab = True  # close_page closes only it
        return page

    def close(self) -> None:
        for context in self._contexts.values():
            context.close()
        self._contexts.clear()


def new_page(browser, view: dict = PROJECTOR):
    """A page at `view` (a fresh tab of a :class:`Chromium`, or a fresh context of a
    Playwright browser), recording page errors in ``page.errors``."""
    if isinstance(browser, Chromium):
        page = browser.new_page(view)
    else:
        page = browser.new_context(**view).new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.set_default_timeout(20_000)
    return page


@contextlib.contextmanager
def page_opener(browser, view: dict = PROJECTOR):
    """``with page_opener(browser) as open_page: page = open_page(url)`` — pages at `view`,
    connected to memdash; on exit they are closed and any JavaScript error fails the test."""
    made = []

    def open_page(url: str, at: dict = view):
        page = new_page(browser, at)
        made.append(page)
        page.goto(url)
        page.wait_for_function("document.body.dataset.connection === 'connected'")
        return page

    yield open_page
    errors = [e for page in made for e in page.errors]
    for page in made:
        close_page(page)
    assert not errors, f"JavaScript errors on the page: {errors}"


def close_page(page) -> None:
    """Close a page from :func:`new_page`: its tab, or its whole context when it had one."""
    if getattr(page, "is_tab", False):  # a tab of a Chromium's persistent context
        page.close()
    else:
        page.context.close()
