"""Room mode in real headless Chromium: a presenter and an audience member (two browser
contexts) against ``memdash --share`` bound to a non-loopback address inside a private network
namespace (tests/_netns.py; Chromium runs inside it too), plus what a page costs to load, on
loopback.

Delays are measured and printed (run with -s to see them); the asserts wait with a deadline.
Screenshots of both contexts go to MEMDASH_SHOTS (else pytest's tmp dir).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import pytest
from _browser import chromium_path, launch_chromium, new_page
from playwright.sync_api import sync_playwright

from dashboard.testing import Server
from tests._netns import NetNamespace, available
from tests._room import SharedServer

why_not = available()
in_namespace = pytest.mark.skipif(
    why_not is not None and os.environ.get("CI") != "true", reason=f"network namespace: {why_not}"
)

# The target is 0.5 s from the presenter's change to the audience's chart; the deadline
# leaves room for a busy 2-core test machine. The measured delay is printed.
FOLLOW_DEADLINE_MS = 5000
FIRST_VISIT_LIMIT = 1.6e6

# Controls that start, stop or change something: none may be visible to the audience.
PRESENTER_CONTROLS = [
    "#picker-toggle",
    "#picker",
    "#stop-all",
    "#clear-finished",
    "#share-qr",
    ".scenario-controls",
    "[data-action]",
    ".stat-card button",
    ".run-row .actions",
    ".presenter-only",
]

# JS: a watch for pid is plotted with the metric `metric`.
PLOTS = "([pid, metric]) => window.memdash.traces().some(t => t.pid === pid && t.metric === metric)"
# JS: note the moment (ms) a condition first holds, polling every 5 ms, in window.__seen.
NOTE_WHEN = """([pid, metric]) => {
    window.__seen = null;
    const iv = setInterval(() => {
        if (window.memdash.traces().some(t => t.pid === pid && t.metric === metric)) {
            window.__seen = Date.now(); clearInterval(iv);
        }
    }, 5);
}"""


@pytest.fixture
def sleeper():
    """A quiet child process for the presenter to show."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def room(tmp_path):
    """(server, presenter page, audience page): Chromium and memdash in one namespace."""
    assert why_not is None, why_not
    with NetNamespace() as ns, sync_playwright() as p:
        server = SharedServer(ns)
        browser = launch_chromium(p, executable_path=ns.wrapper(chromium_path(), tmp_path))
        pages = []
        try:
            presenter, audience = new_page(browser), new_page(browser)
            pages += [presenter, audience]
            yield server, presenter, audience
        finally:
            errors = [e for page in pages for e in page.errors]
            browser.close()
            server.stop()
        assert not errors, f"JavaScript errors on the page: {errors}"


# JS: what the page has loaded so far: a script with no finished resource entry is still loading.
LOADING = """() => {
    const done = new Set(performance.getEntriesByType("resource").map(e => e.name));
    const pending = [...document.scripts].map(s => s.src).filter(src => src && !done.has(src));
    const names = [...done].map(n => n.split("/").pop());
    return `readyState ${document.readyState}; scripts loading: ${pending.join(", ") || "none"}; `
        + `${names.length} files loaded: ${names.join(" ")}`;
}"""


def connected(page, server=None) -> None:
    """The page's Socket.IO connection is up.

    Inside the network namespace a page's first connection has, about once in seven full runs,
    never come up (the page stays "connecting", the server logs nothing; cause not found). The
    page is then reloaded once, as a person would, with a warning that says what it saw; a
    second failure fails the test with the page's state and the server's log."""
    ready = "document.body.dataset.connection === 'connected'"
    try:
        page.wait_for_function(ready)
        return
    except Exception as e:
        seen = f"{page.url} was {page.evaluate('window.memdash?.state?.connection')!r} ({e}); "
        seen += page.evaluate(LOADING)
    warnings.warn(f"page not connected in 20 s, reloaded: {seen}", stacklevel=2)
    page.reload()
    try:
        page.wait_for_function(ready)
    except Exception as e:
        state = page.evaluate("window.memdash?.state?.connection")
        log = server.output()[-3000:] if server is not None else ""
        raise AssertionError(f"{seen}; after a reload still {state!r}\n{log}") from e


def visible(page, selectors: list[str]) -> list[str]:
    return [s for s in selectors if any(e.is_visible() for e in page.locator(s).all())]


def follow_delay(presenter, audience, pid: int, metric: str, act) -> float:
    """Do `act` on the presenter's page; ms until the audience plots pid with metric."""
    audience.evaluate(NOTE_WHEN, [pid, metric])
    start = presenter.evaluate("Date.now()")
    act()
    audience.wait_for_function("window.__seen !== null", timeout=FOLLOW_DEADLINE_MS)
    return audience.evaluate("window.__seen") - start


@in_namespace
def test_the_audience_follows_the_presenter_read_only(room, sleeper, shots):
    server, presenter, audience = room
    pid = sleeper.pid

    # Given the presenter link: the token is exchanged for a cookie and leaves the address bar
    presenter.goto(server.presenter)
    connected(presenter, server)
    assert "token" not in presenter.url
    assert presenter.evaluate("document.body.dataset.role") == "presenter"
    assert "token" not in presenter.evaluate("document.cookie")  # HttpOnly
    presenter.wait_for_selector("article.scenario .scenario-controls")
    assert visible(presenter, ["#picker-toggle", "#stop-all", "#share-qr", "#clear-finished"]) == [
        "#picker-toggle",
        "#stop-all",
        "#share-qr",
        "#clear-finished",
    ]

    # and the audience link: a page with no control that starts, stops or changes anything
    audience.goto(server.audience)
    connected(audience, server)
    audience.wait_for_selector("article.scenario")
    room_state = audience.evaluate("window.memdash.state.room")
    assert {k: room_state[k] for k in ("role", "shared", "following")} == {
        "role": "audience",
        "shared": True,
        "following": True,
    }
    assert visible(audience, PRESENTER_CONTROLS) == []
    assert audience.locator("#follow").is_visible()
    audience.keyboard.press("?")
    assert audience.locator("#keys-help kbd").all_inner_texts() == ["Space", "p", "?"]
    audience.keyboard.press("Escape")

    # When the presenter watches a process from the picker
    presenter.click("#picker-toggle")
    presenter.fill("#picker-q", str(pid))

    def pick() -> None:
        presenter.click(f'.picker-row[data-pid="{pid}"]')

    presenter.wait_for_selector(f'.picker-row[data-pid="{pid}"]')
    watched = follow_delay(presenter, audience, pid, "rss", pick)
    presenter.click("#picker-close")

    # Then the audience's chart shows it; and when the presenter switches the metric, that too
    switched = follow_delay(
        presenter, audience, pid, "pss", lambda: presenter.select_option("#metric", "pss")
    )
    print(f"\naudience follows: watch {watched:.0f} ms, metric {switched:.0f} ms")
    assert audience.evaluate("window.memdash.state.settings.metric") == "pss"
    audience.wait_for_function(
        "pid => window.memdash.traces().some(t => t.pid === pid && t.y.length >= 3)", arg=pid
    )
    # still without controls, now that a watch and its card are there
    audience.wait_for_selector(f'.stat-card[data-pid="{pid}"]')
    assert visible(audience, PRESENTER_CONTROLS) == []

    # When the presenter closes the tool result... (a result mirrors: mappings diff, 5 s)
    presenter.locator(f'.stat-card[data-pid="{pid}"] button', has_text="Mappings diff").click()
    presenter.wait_for_selector("#findings:not([hidden]) h3", timeout=20_000)
    title = presenter.inner_text("#findings h3")
    audience.wait_for_function(
        "t => { const h = document.querySelector('#findings:not([hidden]) h3');"
        " return h && h.textContent === t; }",
        arg=title,
    )
    presenter.screenshot(path=str(shots / "room-presenter.png"))
    audience.screenshot(path=str(shots / "room-audience.png"))

    # When the audience zooms into the chart (a drag over the plot)
    box = audience.locator("#chart .nsewdrag").bounding_box()
    y = box["y"] + box["height"] / 2
    audience.mouse.move(box["x"] + box["width"] * 0.5, y)
    audience.mouse.down()
    audience.mouse.move(box["x"] + box["width"] * 0.7, y, steps=5)
    audience.mouse.move(box["x"] + box["width"] * 0.8, y, steps=5)
    audience.mouse.up()
    # Then it leaves follow (its zoom stays), and the presenter's next change does not move it
    audience.wait_for_function("!window.memdash.state.room.following")
    assert audience.get_attribute("#follow", "aria-pressed") == "false"
    assert (
        audience.evaluate("document.getElementById('chart')._fullLayout.xaxis.autorange") is False
    )
    presenter.click('#window [data-window="60"]')
    presenter.select_option("#metric", "rss")
    audience.wait_for_function(
        "() => { const v = window.memdash.state.room.view;"
        " return v && v.metric === 'rss' && v.window === 60; }"
    )
    assert audience.evaluate("window.memdash.state.settings.metric") == "pss"
    audience.screenshot(path=str(shots / "room-audience-zoomed.png"))

    # When the viewer clicks Follow, the presenter's view is back: metric, window, no zoom
    audience.click("#follow")
    audience.wait_for_function(
        "pid => window.memdash.state.room.following && window.memdash.state.settings.window === 60"
        " && window.memdash.traces().some(t => t.pid === pid && t.metric === 'rss')",
        arg=pid,
    )
    audience.wait_for_function("document.getElementById('chart')._fullLayout.xaxis.autorange")

    # The QR code is the presenter's: full-screen with the audience URL, closed by Escape
    presenter.click("#share-qr")
    presenter.wait_for_selector("dialog#qr[open] svg")
    assert server.audience in presenter.inner_text("dialog#qr")
    qr = presenter.locator("dialog#qr svg").bounding_box()
    assert qr["height"] > 0.5 * 720
    presenter.screenshot(path=str(shots / "room-presenter-qr.png"))
    presenter.keyboard.press("Escape")
    presenter.wait_for_selector("dialog#qr", state="hidden")


def test_a_full_room_says_so_in_words(tmp_path):
    """(loopback: the viewer limit does not depend on the bind)"""
    server = Server("--max-viewers", "1")
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            first, second = new_page(browser), new_page(browser)
            first.goto(server.url)
            connected(first)
            # When one more viewer opens the page
            second.goto(server.url)
            toast = second.locator('.toast-error[data-code="too_many_viewers"]')
            toast.wait_for()
            # Then it reads a sentence, and the badge says it will retry
            assert "room is full" in toast.inner_text()
            assert second.get_attribute("#connection", "data-status") == "refused"
            errors = first.errors + second.errors
            browser.close()
        assert not errors, errors
    finally:
        server.stop()


class Traffic:
    """Every request of a page as Chromium's network layer saw it (CDP): its URL and whether
    the cache answered it."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.requests: dict[str, dict] = {}
        self.cdp.on("Network.requestWillBeSent", self._sent)
        self.cdp.on("Network.requestServedFromCache", self._cached)
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.send("Network.enable")

    def _sent(self, e):
        self.requests[e["requestId"]] = {"url": e["request"]["url"], "cached": False}

    def _cached(self, e):
        if e["requestId"] in self.requests:
            self.requests[e["requestId"]]["cached"] = True

    def _response(self, e):
        r = self.requests.get(e["requestId"])
        if r is not None and (
            e["response"].get("fromDiskCache") or e["response"].get("fromPrefetchCache")
        ):
            r["cached"] = True

    def clear(self) -> None:
        self.requests.clear()


def test_a_reload_fetches_only_the_shell_and_a_first_visit_is_small(server):
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = new_page(browser)
        traffic = Traffic(page)
        # Given a first visit to the page (a fresh browser context: empty cache)
        page.goto(server.url)
        connected(page)
        page.wait_for_selector("article.scenario")
        # Then what came over the wire (encoded bodies: gzip where it applies) is small
        loaded = page.evaluate(
            "() => [performance.getEntriesByType('navigation')[0],"
            " ...performance.getEntriesByType('resource')]"
            ".map(e => [e.name, e.encodedBodySize])"
        )
        first = sum(size for _url, size in loaded)
        print(f"\nfirst visit: {first / 1e6:.3f} MB over {len(loaded)} requests")
        assert any(url.endswith("plotly.min.js") for url, _size in loaded)
        assert first < FIRST_VISIT_LIMIT, f"first visit transferred {first} bytes: {loaded}"

        # When the page is reloaded
        traffic.clear()
        page.reload()
        connected(page)
        page.wait_for_selector("article.scenario")
        # Then every file under /static/<version>/ comes from the cache: only the shell is
        # fetched (besides the API calls and the socket, which are data, not the page)
        fetched = {
            re.sub(r"\?.*", "", r["url"].split(server.url, 1)[-1])
            for r in traffic.requests.values()
            if not r["cached"]
        }
        pages = {u for u in fetched if not u.startswith(("/api/", "/socket.io/"))}
        print(f"reload fetched: {sorted(fetched)}")
        assert pages == {"/"}, pages
        statics = [r for r in traffic.requests.values() if "/static/" in r["url"]]
        assert any(r["url"].endswith("plotly.min.js") for r in statics), "no file was asked for"
        assert all(r["cached"] for r in statics), [r for r in statics if not r["cached"]]
        errors = page.errors
        browser.close()
    assert not errors, errors
