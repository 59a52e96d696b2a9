"""Find the leak inside a program started by ``memdash run --tracemalloc``: the reporter's
``_memdash_leaks`` module, as the reporter thread calls it (begin, then finish when due)."""

from __future__ import annotations

import importlib.util
import tracemalloc

import pytest

from dashboard.reporters.env import PYTHON_DIR


@pytest.fixture
def leaks():
    spec = importlib.util.spec_from_file_location(
        "_memdash_leaks", PYTHON_DIR / "_memdash_leaks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tracemalloc.start()
    yield module
    tracemalloc.stop()


def test_a_leak_report_begins_finishes_and_names_what_grew(leaks):
    # Given a report begun
    error, state = leaks.begin(7, 0.5, None)
    assert error is None and state[0] == 7 and state[2] == 0.5
    # When the program grows a list meanwhile
    grown = [bytearray(1000) for _ in range(2000)]
    reply = leaks.finish(state)
    # Then the reply is the leak lab's shape, with this line among what grew
    assert reply["type"] == "leak_report" and reply["seconds"] == 0.5
    assert any(e["file"] == __file__ and e["size_diff"] > 1_000_000 for e in reply["top"])
    assert grown


def test_bad_seconds_and_a_second_report_are_refused_and_change_nothing(leaks):
    for seconds in ("5", True, None):
        error, state = leaks.begin(1, seconds, None)
        assert error == {"type": "error", "message": "leak_report: seconds must be a number"}
        assert state is None
    _, under_way = leaks.begin(1, 1, None)
    error, state = leaks.begin(2, 1, under_way)
    assert error["message"] == "a leak report is already under way" and state is under_way
    # and seconds are kept within 0.1-60
    assert leaks.begin(3, 1000, None)[1][2] == 60.0
