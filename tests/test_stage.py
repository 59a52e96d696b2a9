"""The page on stage, in a real headless Chromium: a 1280x720 projector and the same at
150 % zoom. Geometry is measured (bounding boxes, computed styles), never guessed, and a
screenshot of each view is saved (MEMDASH_SHOTS=dir keeps them; else pytest's tmp dir).

What needs the server's growth estimator (verdict words from `growth`) is driven by the
page's own modules where the server part is not there yet; see the docstrings.
"""

from __future__ import annotations

import re
import time

import pytest
from _browser import PROJECTOR, PROJECTOR_150, close_page, new_page, page_opener
from conftest import ROOT

VIEWS = {"1280x720": PROJECTOR, "150pct": PROJECTOR_150}

# JS: is the element's box inside the viewport, and is it what is drawn at its centre
# (not covered by an overlay, not scrolled out of its panel)?
ON_SCREEN = """(el, fx) => {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) return false;
    if (r.left < 0 || r.top < 0) return false;
    if (r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) return false;
    const hit = document.elementFromPoint(r.left + r.width * fx, r.top + r.height / 2);
    return !!hit && (el === hit || el.contains(hit) || hit.contains(el));
}"""


@pytest.fixture
def stage(server, browser):
    """Open a page at a view (clears finished runs first); fail on any page error."""
    with page_opener(browser) as open_page:

        def open_at(view: dict, query: str = "window=60"):
            server.post("/api/runs/stop-all", json={})
            page = open_page(f"{server.url}/?{query}", view)
            page.wait_for_selector("article.scenario")
            if page.is_enabled("#clear-finished"):
                page.click("#clear-finished")
            page.wait_for_function("!document.querySelector('.run-row')")
            return page

        yield open_at
        server.post("/api/runs/stop-all", json={})


# JS: import one of the page's own modules, from where the page loaded its main module
# (static paths carry a version).
FORMAT_JS = "import(new URL('format.js', document.querySelector('script[type=module]').src).href)"


def on_screen(locator, fx: float = 0.5, timeout: float = 5.0) -> bool:
    """Inside the viewport and drawn (not covered) at `fx` of its width, half its height.
    Polled with a deadline: verdict cells are redrawn every second (a `growth` event), and a
    check that lands while one is replaced would see the new node over the old one."""
    deadline = time.monotonic() + timeout
    while not locator.evaluate(ON_SCREEN, fx):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def compare(page, scenario: str = "unbounded_cache", rate: str = "2000") -> None:
    card = page.locator(f'article.scenario[data-scenario="{scenario}"]')
    card.locator("select.runtime").select_option("python")
    card.locator('input[data-name="rate"]').fill(rate)
    card.locator('[data-action="compare"]').click()
    page.wait_for_function(
        "document.querySelectorAll('.run-row[data-state=\"running\"]').length >= 2"
    )


@pytest.mark.parametrize("view", VIEWS)
def test_after_compare_chart_verdicts_and_result_fit_the_screen(stage, view, shots):
    page = stage(VIEWS[view])
    width = VIEWS[view]["viewport"]["width"]

    # Given the picker folded away: the chart has the width
    assert not page.locator("#picker").is_visible()
    chart = page.locator("#chart")
    assert chart.bounding_box()["width"] >= 0.6 * width

    # When Compare is clicked on a card far below the chart
    compare(page)

    # Then, without any scrolling by the user, the chart and every run's verdict are on screen
    assert on_screen(chart)
    rows = page.locator(".run-row")
    assert rows.count() == 2
    for i in range(2):
        assert on_screen(rows.nth(i).locator(".run-head .verdict")), f"verdict {i} off screen"

    # When a tool runs on the leaky run
    page.locator('.run-row[data-variant="leaky"] [data-action="tool"]').click()
    result = page.locator("#findings")
    page.wait_for_selector("#findings table, .toast-error", timeout=40_000)
    assert not page.locator(".toast-error").count(), page.locator(".toast-error").inner_text()

    # Then its result opens beside or over the chart, on screen, with the chart and verdicts
    assert on_screen(result.locator("h3"))
    assert (
        result.bounding_box()["y"] + result.bounding_box()["height"]
        <= VIEWS[view]["viewport"]["height"] + 0.5
    )
    # (on a short screen the result lies over the chart's older, left part: the newest
    # data, on the right, stays in sight)
    assert on_screen(chart, 0.85)
    assert chart.bounding_box()["width"] >= 0.6 * width
    for i in range(2):
        assert on_screen(rows.nth(i).locator(".run-head .verdict"))
    # and it names the pid it examined
    leaky_pid = page.locator('.run-row[data-variant="leaky"]').get_attribute("data-run-id")
    assert leaky_pid and re.search(r"\(pid \d+\)", result.locator("h3").inner_text())
    # and results read at 1rem or more, wrapping
    size = result.locator("td").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 16
    page.screenshot(path=str(shots / f"stage-{view}.png"))


def test_compare_label_stays_readable_on_hover(stage):
    page = stage(PROJECTOR)
    button = page.locator('article.scenario [data-action="compare"]').first
    button.scroll_into_view_if_needed()
    button.hover()
    colours = button.evaluate(
        "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }"
    )
    assert colours[0] != colours[1], f"label {colours[0]} on {colours[1]}"
    # and the hover shows (the fill changes a little), the label colour stays
    page.mouse.move(0, 0)
    resting = button.evaluate("e => getComputedStyle(e).color")
    assert resting == colours[0]


def test_code_wraps_at_1rem_and_notes_show_on_demand(stage):
    page = stage(PROJECTOR)
    pre = page.locator("article.scenario .code-pair pre").first
    style = pre.evaluate(
        "e => { const s = getComputedStyle(e); return [parseFloat(s.fontSize), s.whiteSpace]; }"
    )
    root = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert style[0] >= root and style[1] == "pre-wrap"
    scenarios = page.evaluate("fetch('/api/scenarios').then(r => r.json())")["scenarios"]
    for sc in scenarios:
        card = page.locator(f'article.scenario[data-scenario="{sc["id"]}"]')
        toggle = card.locator('[data-action="notes"]')
        if not sc.get("notes"):
            assert toggle.count() == 0  # no empty Notes button
            continue
        assert not card.locator(".notes").is_visible()
        toggle.click()
        assert card.locator(".notes").is_visible()
        assert toggle.get_attribute("aria-pressed") == "true"


def test_keys_are_shortcuts_except_while_typing(stage, shots):
    page = stage(PROJECTOR)
    paused = "() => window.memdash.state.settings.paused"

    # Space pauses and resumes
    page.keyboard.press("Space")
    page.wait_for_function(f"({paused})() === true")
    page.keyboard.press("Space")
    page.wait_for_function(f"({paused})() === false")

    # ? lists the keys; Escape closes the list
    page.keyboard.press("?")
    help_box = page.locator("#keys-help")
    help_box.wait_for(state="visible")
    for key in ("Space", "c", "s", "p"):
        assert help_box.locator("kbd", has_text=re.compile(f"^{re.escape(key)}$")).count() == 1
    page.keyboard.press("Escape")
    help_box.wait_for(state="hidden")

    # Keys typed into a text field are typing: nothing pauses, starts or changes mode
    page.click("#picker-toggle")
    page.fill("#picker-q", "")
    page.locator("#picker-q").type(" cs p?")
    assert page.input_value("#picker-q") == " cs p?"
    assert page.evaluate(paused) is False
    assert not page.evaluate("document.body.classList.contains('presenter')")
    assert not help_box.is_visible()
    assert page.locator(".run-row").count() == 0
    page.keyboard.press("Escape")  # closes the drawer
    page.wait_for_function("!document.getElementById('picker').classList.contains('open')")

    # c compares the selected scenario (the card last used)
    card = page.locator('article.scenario[data-scenario="unbounded_cache"]')
    card.locator("select.runtime").select_option("python")
    card.locator("h3").click()
    page.evaluate("document.activeElement.blur()")  # the select had focus: keys would be typing
    page.keyboard.press("c")
    page.wait_for_function(
        "window.memdash.state.runs.filter(r => r.scenario === 'unbounded_cache'"
        " && ['starting', 'running'].includes(r.state)).length === 2"
    )
    # s stops them all
    page.keyboard.press("s")
    page.wait_for_function(
        "window.memdash.state.runs.every(r => !['starting', 'running'].includes(r.state))"
    )

    # p toggles presenter mode: larger text, no picker, kept in the URL
    root = "parseFloat(getComputedStyle(document.documentElement).fontSize)"
    before = page.evaluate(root)
    page.keyboard.press("p")
    page.wait_for_function("document.body.classList.contains('presenter')")
    assert page.evaluate(root) > before
    assert not page.locator("#picker-toggle").is_visible()
    assert "present=1" in page.url
    page.screenshot(path=str(shots / "presenter.png"))
    page.keyboard.press("p")
    page.wait_for_function("!document.body.classList.contains('presenter')")


@pytest.mark.parametrize("view", VIEWS)
def test_presenter_mode_from_the_url_fits_the_screen(stage, view, shots):
    page = stage(VIEWS[view], "window=60&present=1")
    width = VIEWS[view]["viewport"]["width"]
    assert page.evaluate("document.body.classList.contains('presenter')")
    assert not page.locator("#picker-toggle").is_visible()
    compare(page)
    chart = page.locator("#chart")
    assert on_screen(chart) and chart.bounding_box()["width"] >= 0.6 * width
    rows = page.locator(".run-row")
    for i in range(rows.count()):
        assert on_screen(rows.nth(i).locator(".run-head .verdict"))
    page.screenshot(path=str(shots / f"presenter-{view}.png"))


def test_axes_follow_the_data(stage, browser, allocator):
    page = stage(PROJECTOR, f"pid={allocator.pid}&window=60")
    layout = "() => document.getElementById('chart').layout"
    # (the empty chart, before the first sample, had no time ticks: checked on a fresh page)
    empty = new_page(browser, PROJECTOR)
    try:
        empty.goto(page.url.split("?")[0] + "?window=60")
        empty.wait_for_function("document.getElementById('chart').layout")
        assert empty.evaluate(f"({layout})().xaxis.showticklabels") is False
    finally:
        close_page(empty)

    # A watched process: the y unit follows its size, time ticks are whole seconds
    page.wait_for_function(
        "pid => window.memdash.traces().some(t => t.pid === pid && t.y.length > 20)",
        arg=allocator.pid,
    )
    lay = page.evaluate(layout)
    top = max(page.evaluate("window.memdash.traces()")[0]["y"])
    unit = "GiB" if top >= 2**30 else "MiB" if top >= 2**20 else "KiB"
    assert lay["yaxis"]["title"]["text"].endswith(f"({unit})")
    assert lay["xaxis"]["dtick"] % 1000 == 0 and lay["xaxis"]["tickformat"] == "%H:%M:%S"
    # and the unit is chosen by the data: KiB data gets a KiB axis
    units = page.evaluate(
        FORMAT_JS + ".then(m => [500 * 1024, 30 * 2**20, 3 * 2**30].map(b => m.axisUnit(b).name))"
    )
    assert units == ["KiB", "MiB", "GiB"]

    # The log axis has at least three labelled ticks inside its range
    page.check("#log")
    page.wait_for_function(f"({layout})().yaxis.type === 'log'")
    lay = page.evaluate(layout)
    lo, hi = (10**v for v in lay["yaxis"]["range"])
    inside = [v for v in lay["yaxis"]["tickvals"] if lo <= v <= hi]
    assert len(inside) >= 3, (lo, hi, lay["yaxis"]["tickvals"])

    # Align mode with no run to align: nothing to plot, and no ticks over nothing
    page.uncheck("#log")
    page.check("#align")
    page.wait_for_function(f"({layout})().xaxis.showticklabels === false")


def test_runs_share_a_colour_leaky_solid_fixed_dashed_and_clear_finished(stage):
    page = stage(PROJECTOR)
    compare(page)
    page.wait_for_function("window.memdash.traces().length >= 2")
    traces = {
        t["name"].split(" · ")[2].split(" ")[0]: t for t in page.evaluate("window.memdash.traces()")
    }
    # Legend names say scenario, runtime and variant
    assert traces["leaky"]["name"].startswith("unbounded_cache · python · leaky")
    # one colour for the pair; leaky solid, fixed dashed; the runs list shows the same
    assert traces["leaky"]["colour"] == traces["fixed"]["colour"]
    assert (traces["leaky"]["dash"], traces["fixed"]["dash"]) == ("solid", "dash")
    for variant, dash in (("leaky", "solid"), ("fixed", "dash")):
        # Read the swatch in one evaluation: the runs list redraws its rows now and then, and
        # an element found earlier may be detached by then (its computed colour is "").
        swatch = page.evaluate(
            "sel => { const e = document.querySelector(sel);"
            " return [e.dataset.dash, getComputedStyle(e).borderTopColor]; }",
            f'.run-row[data-variant="{variant}"] .swatch',
        )
        rgb = page.evaluate(
            "c => { const d = document.createElement('i'); d.style.color = c;"
            " document.body.append(d); const v = getComputedStyle(d).color;"
            " d.remove(); return v; }",
            traces[variant]["colour"],
        )
        assert swatch == [dash, rgb]
    # start labels do not overlap on the chart
    boxes = page.evaluate(
        "[...document.querySelectorAll('#chart .annotation-text-g')].map(a => {"
        " const r = a.getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom, a.textContent]; })"
    )
    starts = [b for b in boxes if "start" in b[4]]
    assert len(starts) == 2
    a, b = starts
    assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], starts

    # Aligned runs read "+12 s": whole seconds since their start
    page.check("#align")
    layout = "() => document.getElementById('chart').layout.xaxis"
    page.wait_for_function(f"({layout})().title.text === 'since run start'")
    xaxis = page.evaluate(layout)
    assert (xaxis["tickprefix"], xaxis["ticksuffix"]) == ("+", " s")
    assert xaxis["dtick"] == int(xaxis["dtick"]) >= 1

    # Stopped runs leave the list with Clear finished (the chart keeps their lines)
    page.click("#stop-all")
    page.wait_for_function("!document.querySelector('.run-row[data-state=\"running\"]')")
    page.click("#clear-finished")
    page.wait_for_function("!document.querySelector('.run-row')")
    assert len(page.evaluate("window.memdash.traces()")) >= 2


def test_error_toasts_speak_words_in_a_corner_off_the_numbers(stage):
    page = stage(PROJECTOR, "pid=999999999&window=60")
    toast = page.locator(".toast-error").first
    toast.wait_for()
    text = toast.inner_text()
    assert "999999999" in text
    assert not re.search(r"\bno_such_process\b|\bbad_pid\b", text.split("\n")[0])
    assert len(text.split()) >= 6  # a sentence, not a code
    t = toast.bounding_box()
    for sel in (".system", ".side"):
        b = page.locator(sel).bounding_box()
        apart = (
            t["x"] + t["width"] <= b["x"]
            or b["x"] + b["width"] <= t["x"]
            or t["y"] + t["height"] <= b["y"]
            or b["y"] + b["height"] <= t["y"]
        )
        assert apart, f"toast covers {sel}"


def test_picker_shows_the_command_and_refreshes_its_rss(stage, allocator):
    page = stage(PROJECTOR)
    page.click("#picker-toggle")
    page.fill("#picker-q", str(allocator.pid))
    row = page.locator(f'.picker-row[data-pid="{allocator.pid}"]')
    row.wait_for()
    # a shortened command line, not only the program's name
    assert re.match(r"python[\d.]* -c ", row.locator(".p-cmd").inner_text())
    before = row.locator(".p-rss").inner_text()
    allocator.alloc(60)
    page.wait_for_function(
        "([pid, before]) => {"
        " const r = document.querySelector(`.picker-row[data-pid='${pid}'] .p-rss`);"
        " return r && r.textContent !== before; }",
        arg=[allocator.pid, before],
        timeout=15_000,
    )


def test_the_page_computes_no_growth_of_its_own():
    """Item 1: the verdict is the server's; no slope or fit code is left in static/js."""
    for path in (ROOT / "static" / "js").glob("*.js"):
        text = path.read_text()
        for word in ("regression", "slope", "linearFit", "mibPerMin", "recentSlope"):
            assert word not in text, f"{path.name} computes growth ({word})"


def test_server_growth_reads_as_words_and_colours(stage):
    page = stage(PROJECTOR)
    got = page.evaluate(
        FORMAT_JS
        + """.then(m => [
            m.describeGrowth({verdict: 'warming_up', bytes_per_min: 0, window_s: 3}),
            m.describeGrowth({verdict: 'stable', bytes_per_min: 1024, window_s: 30}),
            m.describeGrowth({verdict: 'growing', bytes_per_min: 12 * 2**20, window_s: 30}),
            m.describeGrowth({verdict: 'shrinking', bytes_per_min: -3 * 2**20, window_s: 30}),
            m.describeGrowth(null)])"""
    )
    assert [g["text"] for g in got] == [
        "warming up",
        "stable +1.00 KiB/min",
        "growing +12.0 MiB/min",
        "shrinking -3.00 MiB/min",
        "–",
    ]
    # and the colours: grey, green, red, blue
    colours = page.evaluate(
        """['warming_up', 'stable', 'growing', 'shrinking'].map(v => {
            const e = document.createElement('span'); e.className = 'verdict verdict-' + v;
            document.body.append(e); const c = getComputedStyle(e).color;
            e.remove(); return c; })"""
    )
    assert len(set(colours)) == 4
