"""Room mode for real: ``memdash --share`` bound beyond loopback, reached at a non-loopback
address by a presenter and an audience — inside a private network namespace the test makes
(as root: ``unshare -n`` style, see tests/_netns.py), so no traffic leaves this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dashboard.testing import ROOT, wait_for
from tests._netns import NetNamespace, available
from tests._room import SharedServer

why_not = available()
pytestmark = pytest.mark.skipif(
    why_not is not None and os.environ.get("CI") != "true", reason=f"network namespace: {why_not}"
)


@pytest.fixture
def ns():
    assert why_not is None, why_not
    with NetNamespace() as namespace:
        yield namespace


@pytest.fixture
def secretive():
    """A process whose command line carries a secret, for the presenter to show."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", "--api-token=abc123", "-v"]
    )
    yield proc
    proc.kill()
    proc.wait()


def test_share_prints_lan_urls_and_a_qr_code(ns):
    server = SharedServer(ns)
    try:
        # Then both URLs name the namespace's own address, never 0.0.0.0
        assert server.presenter.startswith(f"http://{ns.address}:")
        assert server.audience == server.presenter.split("?")[0]
        # And the QR code follows them (printed after the URLs: wait for it, not assume it)
        wait_for(lambda: "▀" in server.output() or "▄" in server.output(), 10, "the QR code")
        assert "0.0.0.0" not in server.output()
    finally:
        server.stop()


def test_presenter_and_audience_over_the_network(ns, secretive):
    # Given a server started once before (its token is now stale) and a fresh one
    first = SharedServer(ns)
    old_token = first.token
    first.stop()
    server = SharedServer(ns)
    try:
        base = server.audience.rstrip("/")
        probe = ns.run(
            [
                sys.executable,
                "tests/room_probe.py",
                base,
                server.token,
                old_token,
                str(secretive.pid),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr + server.output()
        out = json.loads(probe.stdout.strip().splitlines()[-1])
    finally:
        server.stop()

    # The presenter link sets an HttpOnly, SameSite=Strict cookie and the presenter page
    assert out["presenter_page"] == [200, True]
    assert "HttpOnly" in out["cookie"] and "SameSite=Strict" in out["cookie"]
    assert out["audience_page"] is True
    # A stale, a wrong, or a header-borne token does not make a presenter
    assert out["old_token"] == "bad_token"
    assert out["wrong_token"] == "bad_token"
    assert out["header_token"] == "presenter_only"
    # Every route that is not marked readable answers presenter_only to the audience
    assert out["audience_routes"], "no routes enumerated"
    for route, (status, code) in out["audience_routes"].items():
        assert (status, code) == (403, "presenter_only"), route
    assert out["presenter_list"] == 200
    assert out["audience_list"] == "presenter_only"
    # The audience sees only what the presenter shows
    assert out["audience_unshown"] == "not_shown"
    assert out["audience_watch_unshown"]["error"]["code"] == "not_shown"
    assert [(h["role"], h["shared"]) for h in out["hello"]] == [
        ("audience", True),
        ("presenter", True),
    ]
    assert out["audience_view"]["error"]["code"] == "presenter_only"
    assert out["presenter_view"] == {"ok": True}
    assert out["relayed"]["watches"] == [{"pid": secretive.pid}]
    assert out["audience_watch_shown"] == ["bucket", "children", "pid", "process", "samples"]
    assert out["audience_samples"] is True
    assert out["late_view"]["metric"] == "rss"  # a late joiner gets the current view
    # with secrets masked in what it is shown
    assert "--api-token=••••" in out["audience_process"] and "abc123" not in out["audience_process"]
    # and a flood of requests is rate-limited, not served
    assert "rate_limited" in out["flood"]


def test_max_viewers_refuses_the_next_connection_clearly():
    """(loopback is enough here: the limit does not depend on the bind)"""
    import socketio

    from dashboard.testing import Server, Viewer

    server = Server("--max-viewers", "2")
    viewers = []
    try:
        viewers = [Viewer(server.url) for _ in range(2)]
        # When a third viewer connects
        third = socketio.Client(reconnection=False)
        refusals = []
        third.on("connect_error", lambda data: refusals.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            third.connect(server.url, transports=["websocket"], wait_timeout=10)
        # Then it is told why, in the one error shape
        wait_for(lambda: refusals, timeout=5, message="the connect_error")
        assert refusals[0]["data"]["error"]["code"] == "too_many_viewers"
        assert "viewers" in refusals[0]["message"]
        # and the two connected viewers keep streaming
        assert all(v.next("system", timeout=5) for v in viewers)
    finally:
        for v in viewers:
            v.close()
        server.stop()
