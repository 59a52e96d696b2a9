"""The page over `memdash open FILE`, in a real headless Chromium at 1280x720: a real child
recorded by `memdash record`, the real server started as a user starts it, the replay bar
driven by clicks. Every wait polls with a deadline."""

from __future__ import annotations

import time

import pytest
from _browser import page_opener
from conftest import MiB, wait_for
from test_replay import Opened, file_samples, write_lab_recording

TRACE_LEN = (
    "pid => (window.memdash.traces().find(t => t.pid === pid && t.metric === 'rss')"
    " || {y: []}).y.length"
)
# The server's last cursor state as the page holds it (the bar's data-cursor).
REPLAY = "() => JSON.parse(document.getElementById('replay').dataset.cursor || 'null')"


@pytest.fixture
def open_page(browser):
    with page_opener(browser) as open_connected:

        def go(url: str):
            page = open_connected(url)
            page.wait_for_function(f"() => !!({REPLAY})()")  # the replay bar has its state
            return page

        yield go


def seek(page, t: float) -> None:
    """Drag the slider to `t` as a hand does: input while moving, change on release."""
    page.eval_on_selector(
        "#replay-slider",
        "(s, t) => { s.value = String(t); s.dispatchEvent(new Event('input'));"
        " s.dispatchEvent(new Event('change')); }",
        t,
    )


def test_replay_bar_plays_seeks_and_hides_what_would_change_anything(recorded, open_page):
    path, pid = recorded
    expected = file_samples(path, pid)
    server = Opened(path)
    try:
        page = open_page(f"{server.url}/?pid={pid}&window=60")
        cursor = page.evaluate(f"({REPLAY})()")
        assert cursor["t"] == cursor["end"] and cursor["playing"] is False

        # The bar: a slider over the recording's span, at its end, and the time beside it
        bar = page.locator("#replay")
        assert bar.is_visible()
        slider = page.locator("#replay-slider")
        assert float(slider.get_attribute("min")) == cursor["start"]
        assert float(slider.get_attribute("max")) == cursor["end"]
        assert float(slider.input_value()) == pytest.approx(cursor["end"])
        assert "of 3" in page.inner_text("#replay-time")  # "… · 3.0 s of 3.0 s"
        # Opened at the end: every recorded sample is drawn
        page.wait_for_function(f"pid => ({TRACE_LEN})(pid) === {len(expected)}", arg=pid)

        # Nothing that starts, stops or changes anything is on screen (present, but hidden)
        page.locator('[data-action="compare"]').first.wait_for(state="attached")
        for selector in ('[data-action="compare"]', '[data-action="run-leaky"]', "#stop-all",
                         "#clear-finished", "#pause"):  # fmt: skip
            assert page.locator(selector).count() > 0, selector
            assert not page.locator(selector).first.is_visible(), selector
        # ... but what only reads the file is: its exports
        page.locator("#export").wait_for()

        # Seeking to the start drops what was drawn and draws what lies up to the cursor
        seek(page, cursor["start"])
        page.wait_for_function(f"() => ({REPLAY})().seek === 1")
        page.wait_for_function(f"pid => ({TRACE_LEN})(pid) <= 1", arg=pid)
        assert float(slider.input_value()) == pytest.approx(cursor["start"])
        assert page.evaluate(f"({REPLAY})()")["t"] == cursor["start"]

        # Play: the cursor moves and the samples are drawn as it passes them
        page.click("#replay-play")
        page.wait_for_function(f"() => ({REPLAY})().playing")
        assert page.inner_text("#replay-play") == "❚❚ Pause"
        wait_for(lambda: float(slider.input_value()) > cursor["start"] + 0.5, 10, "the slider")
        page.wait_for_function(f"pid => ({TRACE_LEN})(pid) > 5", arg=pid)
        # ... to the end of the recording, where play stops with every sample drawn
        page.wait_for_function(f"() => !({REPLAY})().playing", timeout=20_000)
        page.wait_for_function(f"pid => ({TRACE_LEN})(pid) === {len(expected)}", arg=pid)
        ys = page.evaluate(
            "pid => window.memdash.traces().find(t => t.pid === pid && t.metric === 'rss').y", pid
        )
        assert max(ys) - min(ys) >= 15 * MiB

        # 10×: from the end, play starts again from the start (a new seek) at ten times
        page.click('#replay-speed [data-speed="10"]')
        page.click("#replay-play")
        page.wait_for_function(f"() => ({REPLAY})().speed === 10 && ({REPLAY})().seek === 2")
        page.wait_for_function(f"() => !({REPLAY})().playing", timeout=20_000)
        page.wait_for_function(f"pid => ({TRACE_LEN})(pid) === {len(expected)}", arg=pid)
        assert page.locator(".toast-error").count() == 0
    finally:
        server.stop()


def test_a_recorded_tool_result_opens_in_the_results_panel_as_the_cursor_passes(
    tmp_path, open_page
):
    # A recording with a run, its tool mark and its leak report (written by the real Recorder)
    t0 = time.time() - 100
    path = tmp_path / "lab.sqlite"
    report = {"type": "leak_report", "pid": 4242, "run_id": "r1", "seconds": 5,
              "rss_diff": 8 * MiB, "heap_diff": 7 * MiB,
              "top": [{"file": "cache.py", "line": 12, "size_diff": 7 * MiB, "count_diff": 900,
                       "size": 9 * MiB, "count": 1200}]}  # fmt: skip
    write_lab_recording(path, t0, ended_at=t0 + 3.5, result=report)
    server = Opened(path)
    try:
        page = open_page(f"{server.url}/?pid=4242&window=60")
        # Opened at the end: the result is in the panel, worded as the live tool words it
        findings = page.locator("#findings")
        findings.locator("h3").wait_for()
        assert "unbounded_cache · python · leaky" in findings.locator("h3").inner_text()
        assert "cache.py:12" in findings.inner_text()
        page.locator('.run-row[data-run-id="r1"][data-state="crashed"]').wait_for()

        # Before the tool ran: no result, the run not started yet
        seek(page, t0 + 0.2)
        page.wait_for_function("() => document.getElementById('findings').hidden")
        page.wait_for_function("() => !document.querySelector('.run-row[data-run-id=r1]')")
        # Playing (1×) past its start: the run is listed as running, without Stop or tools
        # (a recording is read-only), then the result opens again as the cursor passes it
        page.click("#replay-play")
        row = page.locator('.run-row[data-run-id="r1"][data-state="running"]')
        row.wait_for()
        for action in ("stop", "tool", "mappings"):
            assert row.locator(f'[data-action="{action}"]').count() == 1, action
            assert not row.locator(f'[data-action="{action}"]').is_visible(), action
        findings.locator("h3").wait_for()
        assert "cache.py:12" in findings.inner_text()
        assert page.locator(".toast-error").count() == 0
    finally:
        server.stop()
