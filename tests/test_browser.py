"""The page, driven in a real headless Chromium against the real memdash server.

The chart's data is read through the page's read-only test hook
``window.memdash.traces()`` (y in bytes, x in epoch seconds) instead of scraping SVG.
Every wait is "until a condition holds, with a deadline"; no sleep is an assertion.

Fixtures ``server`` and ``allocator`` come from conftest.py; the browser fixtures are
defined here (conftest has none yet).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from _browser import PROJECTOR, close_page, new_page
from conftest import ROOT, MiB, Server, wait_for

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# JS predicate: the last plotted point of pid's trace is at least `floor` bytes.
LAST_Y_AT_LEAST = (
    "([pid, floor]) => window.memdash.traces()"
    ".some(t => t.pid === pid && t.y[t.y.length - 1] >= floor)"
)


# -- browser fixtures ---------------------------------------------------------------------------


@pytest.fixture
def browser_page(browser):
    """A fresh 1280x720 page (projector size) that fails the test on any page error."""
    page = new_page(browser, PROJECTOR)
    yield page
    close_page(page)
    assert not page.errors, f"JavaScript errors on the page: {page.errors}"


@pytest.fixture
def no_runs_left(server):
    """Leak-lab tests stop whatever they started, even when they fail."""
    yield
    server.post("/api/runs/stop-all", json={})


# -- helpers -------------------------------------------------------------------------------------


def traces(page) -> list[dict]:
    return page.evaluate("() => window.memdash.traces()")


def trace_for(page, pid: int) -> dict | None:
    return next((t for t in traces(page) if t["pid"] == pid), None)


def wait_trace_points(page, pid: int, n: int = 3, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "([pid, n]) => window.memdash.traces().some(t => t.pid === pid && t.y.length >= n)",
        arg=[pid, n],
        timeout=timeout,
    )


# -- the chart ---------------------------------------------------------------------------------


def test_watch_from_url_plots_the_pid_and_follows_its_growth(server, allocator, browser_page):
    page = browser_page
    # Given a page opened on a URL naming a real child process
    page.goto(f"{server.url}/?pid={allocator.pid}&metric=rss&window=60")
    page.wait_for_function("document.body.dataset.connection === 'connected'")

    # Then the chart gets a trace for that pid, labelled "name (pid)"
    wait_trace_points(page, allocator.pid)
    trace = trace_for(page, allocator.pid)
    assert f"({allocator.pid})" in trace["name"]
    baseline = trace["y"][-1]
    # and the plotted RSS is the kernel's figure, within a few MiB
    assert abs(baseline - allocator.vmrss()) < 8 * MiB

    # When the child allocates (and touches) 50 MiB more
    allocator.alloc(50)

    # Then the last plotted RSS point rises by about that much
    page.wait_for_function(
        LAST_Y_AT_LEAST,
        arg=[allocator.pid, baseline + 40 * MiB],
        timeout=15_000,
    )
    # and the stats strip shows the watch
    assert page.locator(f'.stat-card[data-pid="{allocator.pid}"]').is_visible()


def test_picker_filters_and_clicking_a_row_adds_a_watch(server, allocator, browser_page):
    page = browser_page
    # Given an empty dashboard with the process list loaded
    page.goto(f"{server.url}/")
    page.click("#picker-toggle")  # the picker is a drawer, folded away until opened
    page.wait_for_selector(".picker-row")
    unfiltered = page.locator(".picker-row").count()

    # When the user types the child's pid into the filter
    page.fill("#picker-q", str(allocator.pid))

    # Then the list narrows to rows matching it (by pid, name or command line), the child among them
    page.wait_for_function(
        """q => {
            const rows = [...document.querySelectorAll('.picker-row')];
            return rows.length > 0
                && rows.every(r => (r.dataset.pid + r.title + r.textContent).includes(q));
        }""",
        arg=str(allocator.pid),
    )
    assert page.locator(".picker-row").count() <= unfiltered
    row = page.locator(f'.picker-row[data-pid="{allocator.pid}"]')
    assert row.is_visible()

    # When the row is clicked
    row.click()

    # Then the pid is watched: a trace, a stats card, and the URL records it
    wait_trace_points(page, allocator.pid)
    assert page.locator(f'.stat-card[data-pid="{allocator.pid}"]').is_visible()
    assert f"pid={allocator.pid}" in page.url

    # When its remove (x) control is clicked, the watch goes away again
    page.locator(f'.stat-card[data-pid="{allocator.pid}"] button.remove').click()
    page.wait_for_function(
        "pid => !window.memdash.traces().some(t => t.pid === pid)", arg=allocator.pid
    )
    assert f"pid={allocator.pid}" not in page.url


def test_the_page_loads_every_module_once_and_exposes_the_test_hook(server, browser_page):
    page = browser_page
    loaded: dict[str, int] = {}  # module file name -> HTTP status

    def record(response) -> None:
        if re.search(r"/static/(?:[0-9a-f]+/)?js/", response.url):  # paths may carry a version
            loaded[response.url.rsplit("/", 1)[1]] = response.status

    page.on("response", record)

    # Given the page, loaded and connected
    page.goto(f"{server.url}/")
    page.wait_for_function("document.body.dataset.connection === 'connected'")
    page.wait_for_selector("article.scenario")

    # Then every module under static/js was fetched (none is dead) and every fetch worked
    on_disk = {p.name for p in (ROOT / "static" / "js").glob("*.js")}
    assert set(loaded) == on_disk, f"not loaded: {on_disk - set(loaded)}"
    assert all(status == 200 for status in loaded.values()), loaded

    # and the read-only test hook keeps its shape
    assert page.evaluate("Object.keys(window.memdash).sort()") == [
        "dropConnection",
        "state",
        "traces",
    ]
    assert page.evaluate("Object.keys(window.memdash.state).sort()") == [
        "connection",
        "gone",
        "room",
        "runs",
        "settings",
        "watches",
    ]
    # and on loopback without --share this one person is the presenter, not shared
    assert page.evaluate("window.memdash.state.room") == {
        "role": "presenter",
        "shared": False,
        "following": False,
        "view": None,
    }
    assert page.evaluate("Object.isFrozen(window.memdash)")


def test_no_request_leaves_loopback(server, allocator, browser_page):
    page = browser_page
    urls: list[str] = []
    page.on("request", lambda req: urls.append(req.url))
    page.on("websocket", lambda ws: urls.append(ws.url))

    # Given a page that loads everything: chart, socket, scenarios, a watch, the picker
    page.goto(f"{server.url}/?pid={allocator.pid}&theme=light")
    wait_trace_points(page, allocator.pid)
    page.wait_for_selector("article.scenario")
    page.click("#picker-toggle")
    page.fill("#picker-q", "python")
    page.wait_for_selector(".picker-row")
    page.click("#theme")

    # Then every request it made went to this machine
    assert urls, "no request was recorded"
    assert any(u.endswith("plotly.min.js") for u in urls)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            continue
        assert parts.hostname in LOOPBACK, f"request off the machine: {url}"


def test_bad_pid_in_url_shows_an_error_toast_and_the_page_keeps_working(
    server, allocator, browser_page
):
    page = browser_page
    # Given a shared link naming a pid that does not exist next to one that does
    bad = 999_999_999
    page.goto(f"{server.url}/?pid={bad}&pid={allocator.pid}")

    # Then a visible error toast names the problem
    toast = page.locator(".toast-error").first
    toast.wait_for(state="visible")
    assert toast.get_attribute("data-code") in {"no_such_process", "bad_pid", "bad_request"}
    assert str(bad) in toast.inner_text()

    # and the good pid is still plotted, the bad one dropped from the view and the URL
    wait_trace_points(page, allocator.pid)
    assert trace_for(page, bad) is None
    page.wait_for_function("pid => !location.search.includes('pid=' + pid)", arg=bad)

    # When the toast is dismissed it goes away
    toast.locator(".toast-close").click()
    page.wait_for_function("document.querySelectorAll('.toast-error').length === 0")

    # and the page keeps working: switching the metric still plots the good pid
    page.select_option("#metric", "uss")
    page.wait_for_function(
        "pid => window.memdash.traces()"
        ".some(t => t.pid === pid && t.metric === 'uss' && t.y.length > 0)",
        arg=allocator.pid,
    )


def test_the_page_asks_for_detail_figures_only_while_it_draws_them(allocator, browser_page):
    page = browser_page
    # Given a server that reads USS/PSS every 0.1 s while a page draws one of them and
    # otherwise only in its first second, and a page drawing RSS
    with Server("--detail-interval", "0.1", "--background-detail-interval", "600") as srv:
        page.goto(f"{srv.url}/?pid={allocator.pid}&metric=rss")
        wait_trace_points(page, allocator.pid, n=30)
        # When the viewer switches to USS
        page.select_option("#metric", "uss")
        # Then USS points come at the detail rate (without the page's `draw`, one at most)
        page.wait_for_function(
            "pid => window.memdash.traces()"
            ".some(t => t.pid === pid && t.metric === 'uss' && t.y.length >= 10)",
            arg=allocator.pid,
            timeout=10_000,
        )


def test_pause_keeps_buffering_and_resume_catches_up(server, allocator, browser_page):
    page = browser_page
    # Given a watched child with a few points plotted
    page.goto(f"{server.url}/?pid={allocator.pid}&window=60")
    wait_trace_points(page, allocator.pid, n=5)

    # When the chart is paused and the child allocates
    page.click("#pause")
    frozen = trace_for(page, allocator.pid)
    allocator.alloc(40)
    # (samples keep arriving in the buffer meanwhile)
    page.wait_for_function(
        "([pid, n]) => window.memdash.state.watches.some(w => w.pid === pid && w.samples > n + 10)",
        arg=[allocator.pid, len(frozen["y"])],
    )

    # Then nothing new was drawn
    assert trace_for(page, allocator.pid)["x"][-1] == frozen["x"][-1]

    # When resumed, the chart catches up with what was buffered, allocation included
    page.click("#pause")
    page.wait_for_function(
        LAST_Y_AT_LEAST,
        arg=[allocator.pid, frozen["y"][-1] + 30 * MiB],
    )


def test_process_exit_is_marked_and_the_watch_stays(server, allocator, browser_page):
    page = browser_page
    # Given a watched child
    page.goto(f"{server.url}/?pid={allocator.pid}")
    wait_trace_points(page, allocator.pid)

    # When it exits
    allocator.exit(0)

    # Then its legend says "(exited)" and its trace and card stay on screen
    page.wait_for_function(
        "pid => window.memdash.traces().some(t => t.pid === pid && t.name.includes('(exited)'))",
        arg=allocator.pid,
    )
    assert page.locator(f'.stat-card[data-pid="{allocator.pid}"].exited').is_visible()
    assert len(trace_for(page, allocator.pid)["y"]) >= 3


def test_a_dropped_connection_is_backfilled_without_a_gap(server, allocator, browser_page):
    # Given a page plotting a process sampled every 50 ms
    page = browser_page
    page.goto(f"{server.url}/?pid={allocator.pid}")
    wait_trace_points(page, allocator.pid, n=10)
    # When its connection drops (the server keeps sampling) and comes back a second later
    page.evaluate("window.memdash.dropConnection()")
    page.wait_for_function("document.body.dataset.connection === 'disconnected'")
    page.wait_for_function("document.body.dataset.connection === 'connected'", timeout=15_000)
    back = page.evaluate("Date.now() / 1000")
    wait_for(
        lambda: trace_for(page, allocator.pid)["x"][-1] > back + 0.5,
        message="points after the reconnect",
    )
    # Then the chart has no hole where the connection was down
    xs = trace_for(page, allocator.pid)["x"]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert max(gaps) < 0.4, f"largest gap {max(gaps):.2f} s"
    assert len(set(xs)) == len(xs)  # and no point twice


def test_reconnect_backfills_and_the_chart_goes_on(allocator, browser_page):
    page = browser_page
    # Given a page watching a child on a server of its own (this test restarts it)
    srv = Server()
    try:
        page.goto(f"{srv.url}/?pid={allocator.pid}")
        wait_trace_points(page, allocator.pid, n=5)

        # When the server goes away
        srv.proc.terminate()
        srv.proc.wait(15)

        # Then the badge says the connection is lost
        page.wait_for_function("document.body.dataset.connection === 'disconnected'")
        assert "reconnecting" in page.inner_text("#connection")
        down_at = trace_for(page, allocator.pid)["x"][-1]

        # When it comes back on the same port
        srv.start()

        # Then the page says "reconnected", re-watches, and new samples extend the same trace
        page.wait_for_function(
            "document.getElementById('connection').textContent === 'reconnected'"
        )
        before = trace_for(page, allocator.pid)["y"][-1]
        allocator.alloc(40)
        page.wait_for_function(
            "([pid, t, floor]) => window.memdash.traces().some(tr => tr.pid === pid"
            " && tr.x[tr.x.length - 1] > t && tr.y[tr.y.length - 1] >= floor)",
            arg=[allocator.pid, down_at, before + 30 * MiB],
        )
        # and no sample was plotted twice (backfill is deduplicated by t)
        xs = trace_for(page, allocator.pid)["x"]
        assert all(xs[i] < xs[i + 1] for i in range(len(xs) - 1))
    finally:
        srv.stop()


# -- the leak lab ------------------------------------------------------------------------------


def test_compare_shows_diverging_runs_and_stop_all_ends_them(server, browser_page, no_runs_left):
    page = browser_page
    card = page.locator('article.scenario[data-scenario="unbounded_cache"]')

    # Given the leak lab with the unbounded-cache scenario on Python, leaking fast
    page.goto(f"{server.url}/?window=60")
    card.wait_for()
    card.locator("select.runtime").select_option("python")
    card.locator('input[data-name="rate"]').fill("2000")

    # When Compare is clicked
    card.locator('[data-action="compare"]').click()

    # Then two runs appear, leaky and fixed, each watched and plotted
    page.wait_for_function(
        """() => {
            const names = window.memdash.traces().map(t => t.name);
            return names.some(n => n.includes('unbounded_cache · python · leaky'))
                && names.some(n => n.includes('unbounded_cache · python · fixed'));
        }"""
    )
    runs = page.evaluate(
        "() => window.memdash.state.runs.filter(r => r.scenario === 'unbounded_cache')"
    )
    assert {r["variant"] for r in runs} == {"leaky", "fixed"}
    run_ids = [r["run_id"] for r in runs]

    # and they diverge: leaky's RSS grows far more than fixed's
    def growth(t):
        return t["y"][-1] - t["y"][0]

    def diverged():
        ts = {
            t["name"].split(" · ")[2].split(" ")[0]: t for t in traces(page) if " · " in t["name"]
        }
        if "leaky" not in ts or "fixed" not in ts or not ts["leaky"]["y"] or not ts["fixed"]["y"]:
            return False
        leaky, fixed = growth(ts["leaky"]), growth(ts["fixed"])
        return leaky > 60 * MiB and leaky > 2 * max(fixed, 0) + 20 * MiB

    wait_for(diverged, timeout=45, interval=0.5, message="leaky to outgrow fixed")

    # When Stop all is clicked
    page.click("#stop-all")

    # Then the runs list shows both as stopped (not running)
    for run_id in run_ids:
        page.wait_for_function(
            "id => { const r = document.querySelector(`.run-row[data-run-id='${id}']`);"
            " return r && !['running', 'starting'].includes(r.dataset.state); }",
            arg=run_id,
        )
    # and the server agrees
    listed = {r["run_id"]: r for r in server.get("/api/runs").json()["runs"]}
    for run_id in run_ids:
        assert listed[run_id]["state"] not in ("running", "starting")


def test_crash_and_cap_are_annotated_on_the_chart(server, browser_page, no_runs_left):
    page = browser_page
    page.goto(f"{server.url}/?window=60")
    limit = page.locator('article.scenario[data-scenario="heap_limit"]')
    cache = page.locator('article.scenario[data-scenario="unbounded_cache"]')
    limit.wait_for()

    # Given a heap-limit comparison with a small limit, and a fast leak with a small cap
    limit.locator("select.runtime").select_option("python")
    limit.locator('input[data-name="rate"]').fill("2000")
    limit.locator('input[data-name="limit_mb"]').fill("48")
    limit.locator('[data-action="compare"]').click()
    cache.locator("select.runtime").select_option("python")
    cache.locator('input[data-name="rate"]').fill("3000")
    cache.locator('input[data-name="max_rss_mb"]').fill("64")
    cache.locator('[data-action="run-leaky"]').click()

    # Then the leaky heap-limit run crashes and the capped one is stopped at its cap ...
    page.wait_for_function(
        "() => ['crashed', 'capped'].every(s =>"
        " window.memdash.state.runs.some(r => r.state === s))",
        timeout=60_000,
    )
    runs = {(r["scenario"], r["variant"]): r for r in page.evaluate("window.memdash.state.runs")}
    assert runs[("heap_limit", "leaky")]["state"] == "crashed"
    assert "out of memory" in runs[("heap_limit", "leaky")]["reason"]
    page.wait_for_function(  # while the fixed one, same work, bounded, lives on
        "() => window.memdash.state.runs.some(r => r.scenario === 'heap_limit'"
        " && r.variant === 'fixed' && r.state === 'running')"
    )
    assert runs[("unbounded_cache", "leaky")]["state"] == "capped"
    # ... and the chart says so where it happened
    page.wait_for_function(
        "() => { const texts = (document.getElementById('chart').layout.annotations || [])"
        ".map(a => a.text).join(' | ');"
        " return texts.includes('✖ leaky: ') && texts.includes('out of memory')"
        " && texts.includes('▲ leaky: '); }"
    )
