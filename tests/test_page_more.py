"""The page's process trees, language heap and keeping, in a real headless Chromium at
1280x720 against the real server: real process trees started here, a real `memdash run` of a
Node program, real downloads. Nothing is mocked; every wait polls with a deadline."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from _browser import page_opener
from conftest import wait_for

# A parent with two children: the first grows (1 MiB every 0.1 s, up to 150 MiB), the second
# holds still. The parent prints the children's pids, then waits.
GROW = textwrap.dedent(
    """
    import time
    held = []
    for _ in range(1500):
        held.append(bytearray(1 << 20))
        held[-1][::4096] = b"x" * 256
        time.sleep(0.1)
    time.sleep(600)
    """
)
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    codes = (sys.argv[1], "import time; time.sleep(600)")
    kids = [subprocess.Popen([sys.executable, "-c", code]) for code in codes]
    print(" ".join(str(k.pid) for k in kids), flush=True)
    for k in kids:
        k.wait()
    """
)


@pytest.fixture
def pages(browser):
    with page_opener(browser) as open_page:
        yield open_page


@pytest.fixture
def tree():
    proc = subprocess.Popen(
        [sys.executable, "-c", PARENT, GROW],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    kids = [int(p) for p in proc.stdout.readline().split()]
    yield proc.pid, kids
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


TRACES = "() => window.memdash.traces().map(t => [t.pid, t.children, t.metric, t.colour])"


def test_a_tree_toggled_on_draws_each_member_and_the_total(server, pages, tree):
    parent, (grower, sleeper) = tree
    page = pages(f"{server.url}/?pid={parent}&window=60")
    card = page.locator(f'.stat-card[data-pid="{parent}"]')
    card.wait_for()

    # When "with children" is switched on on the process's own line
    card.locator('[data-toggle="children"]').click()

    # Then the line is the tree: one line per member plus the total, on the chart and beside it
    page.wait_for_function(
        "pid => window.memdash.traces().some(t => t.pid === pid && t.children)", arg=parent
    )
    page.wait_for_function(
        "pids => pids.every(p => window.memdash.traces().some(t => t.pid === p && !t.children))",
        arg=[parent, grower, sleeper],
    )
    tree_card = page.locator(f'.stat-card[data-pid="{parent}"][data-children="1"]')
    assert tree_card.locator('[data-toggle="children"]').get_attribute("aria-pressed") == "true"
    rows = tree_card.locator(".member-row")
    wait_for(lambda: rows.count() == 3, 20, "three member lines")
    # and the ranking says which worker leaks: members by growth, with their verdicts
    assert "Which worker leaks" in tree_card.locator(".tree-head").inner_text()
    assert rows.locator(".verdict").count() == 3
    assert f"cpid={parent}" in page.url and f"pid={grower}" not in page.url
    page.wait_for_function(
        "pid => document.querySelector('.member-row')?.dataset.pid === String(pid)",
        arg=grower,
        timeout=30_000,
    )

    # The same link gives the same colours
    before = {(p, c, m): colour for p, c, m, colour in page.evaluate(TRACES)}
    page.reload()
    page.wait_for_function(
        "pids => pids.every(p => window.memdash.traces().some(t => t.pid === p && !t.children))",
        arg=[parent, grower, sleeper],
    )
    after = {(p, c, m): colour for p, c, m, colour in page.evaluate(TRACES)}
    assert after == before
    assert len(set(before.values())) == 4  # total and three members: four colours

    # When a child exits, it gets its exit mark and leaves the tree's list
    os.kill(sleeper, signal.SIGKILL)
    page.wait_for_selector(f'.member-row[data-pid="{sleeper}"]', state="detached")
    page.wait_for_function(
        "[...document.querySelectorAll('#chart .annotation-text-g')]"
        ".some(a => a.textContent.includes('exited'))"
    )
    assert page.locator('.stat-card[data-children="1"] .member-row').count() == 2
    gone = [w for w in page.evaluate("window.memdash.state.watches") if w["pid"] == sleeper]
    assert gone and gone[0]["exited"]

    # Switching it off brings back the process alone
    page.locator(f'.stat-card[data-pid="{parent}"] [data-toggle="children"]').click()
    page.wait_for_function(
        "pid => !window.memdash.traces().some(t => t.children)"
        " && window.memdash.traces().some(t => t.pid === pid)",
        arg=parent,
    )
    assert page.locator(".member-row").count() == 0


def test_a_saved_link_to_gone_processes_opens_quietly(server, pages, allocator):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    page = pages(f"{server.url}/?pid={dead.pid}&pid={allocator.pid}&window=60")
    note = page.locator(".gone-note")
    note.wait_for()
    assert str(dead.pid) in note.inner_text()
    assert page.locator(".gone-note").count() == 1
    page.locator(f'.stat-card[data-pid="{allocator.pid}"]').wait_for()
    assert page.locator(".toast-error").count() == 0


def test_a_plain_python_process_says_no_language_heap(server, pages, allocator):
    page = pages(f"{server.url}/?pid={allocator.pid}&window=60")
    note = page.locator(f'.stat-card[data-pid="{allocator.pid}"] .heap-note')
    note.wait_for()
    assert note.inner_text() == "no language heap"
    # (no inspector to attach to: it is not node)
    assert page.locator('[data-heap-action="attach"]').count() == 0

    # At 1280 px the Mappings diff button lies over none of the verdict's words
    card = page.locator(f'.stat-card[data-pid="{allocator.pid}"]')
    verdict = card.locator(".verdict")
    wait_for(lambda: verdict.inner_text() not in ("", "–"), 20, "a verdict")
    button = card.locator("button", has_text="Mappings diff")
    v, b = verdict.bounding_box(), button.bounding_box()
    apart = (
        v["x"] + v["width"] <= b["x"]
        or b["x"] + b["width"] <= v["x"]
        or v["y"] + v["height"] <= b["y"]
        or b["y"] + b["height"] <= v["y"]
    )
    assert apart, (v, b)
    assert verdict.evaluate("e => e.scrollWidth <= e.clientWidth + 1")


def test_exports_download_a_csv_with_rows_and_a_png(server, pages, allocator, tmp_path):
    page = pages(f"{server.url}/?pid={allocator.pid}&window=60")
    page.wait_for_function(
        "pid => window.memdash.traces().some(t => t.pid === pid && t.y.length > 10)",
        arg=allocator.pid,
    )
    export = page.locator("#export")
    export.wait_for()  # shown: this session is recorded
    with page.expect_download() as got:
        export.locator('[data-format="csv"]').click()
    path = tmp_path / "session.csv"
    got.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert any(r.get("pid") == str(allocator.pid) for r in rows), rows[:3]

    with page.expect_download() as got:
        page.click("#png")
    assert got.value.suggested_filename.endswith(".png")
    png = tmp_path / "chart.png"
    got.value.save_as(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(
    shutil.which("node") is None and not os.environ.get("CI"), reason="node is not installed"
)
def test_memdash_run_of_a_node_program_shows_rss_and_heap(pages):
    from test_run import PROGRAMS, Run

    run = Run("node", str(PROGRAMS / "grow.js"))
    try:
        page = pages(f"{run.url}/?cpid={run.pid}&metric=rss_heap&window=60")
        for metric in ("rss", "heap_used"):
            page.wait_for_function(
                "([pid, m]) => window.memdash.traces().some(t => t.pid === pid && t.metric === m"
                " && t.y.length > 0)",
                arg=[run.pid, metric],
                timeout=30_000,
            )
        # and the program's line says where its heap comes from
        note = page.locator(f'.stat-card[data-pid="{run.pid}"] .heap-note')
        wait_for(lambda: note.count() and "Node heap" in note.first.inner_text(), 20, "heap note")
    finally:
        run.close()


@pytest.mark.skipif(
    shutil.which("node") is None and not os.environ.get("CI"), reason="node is not installed"
)
def test_attach_inspector_then_detach_from_a_plain_node_program(server, pages):
    import psutil
    from test_inspect import PORT, free_9229, listening

    free_9229()
    # Given a plain node program with no inspector open
    target = subprocess.Popen(
        ["node", "-e", "setInterval(() => {}, 1000); console.log('ready')"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert target.stdout.readline().strip() == "ready"  # its SIGUSR1 handling is in place
        assert listening(target.pid) == set()
        page = pages(f"{server.url}/?pid={target.pid}&window=60")
        card = page.locator(f'.stat-card[data-pid="{target.pid}"]')
        note = card.locator(".heap-note")
        wait_for(lambda: note.count() and note.inner_text() == "no language heap", 20, "heap note")

        # When the presenter attaches its inspector
        card.locator('[data-heap-action="attach"]').click()

        # Then the line says whose heap it reads and that the inspector is open meanwhile
        try:
            wait_for(lambda: "inspector open while attached" in note.inner_text(), 30, "attached")
        except AssertionError as e:  # say what the page showed instead
            toasts = page.locator(".toast").all_inner_texts()
            raise AssertionError(f"{e}: the line says {note.inner_text()!r}, {toasts}") from None
        assert note.inner_text().startswith("Node heap (inspector)")
        assert PORT in listening(target.pid)
        # and the heap is drawn beside RSS
        page.wait_for_function(
            "pid => window.memdash.traces().some(t => t.pid === pid && t.metric === 'heap_used'"
            " && t.y.length > 0)",
            arg=target.pid,
            timeout=30_000,
        )

        # When it detaches
        card.locator('[data-heap-action="detach"]').click()

        # Then the inspector memdash opened is closed again, the program runs on
        wait_for(lambda: PORT not in listening(target.pid), 15, "the inspector port to close")
        card.locator('[data-heap-action="attach"]').wait_for()
        wait_for(lambda: note.inner_text() == "no language heap", 20, "the note after detach")
        assert page.locator('[data-heap-action="detach"]').count() == 0
        assert psutil.Process(target.pid).is_running() and target.poll() is None
        assert page.locator(".toast-error").count() == 0
    finally:
        target.kill()
        target.wait()
