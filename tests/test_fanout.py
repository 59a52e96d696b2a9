"""One frame for a room (dashboard/fanout.py) and one encoding for a room joining late
(dashboard/shared_json.py, events.shared_backfill).

The stalled-viewer test runs the real app and Werkzeug server in this process, on a free
loopback port, so that it can bound the fan-out's buffers to a few kilobytes: a viewer that
stops reading is then found in about a second instead of a minute.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import pytest
import socketio
import websocket

from dashboard import events, shared_json
from dashboard.app import create_app
from dashboard.cli.startup import make_server
from dashboard.fanout import Fanout
from dashboard.history import History
from dashboard.testing import Viewer, wait_for

# -- shared encodings ------------------------------------------------------------------------


def test_encoded_text_is_written_in_place():
    # Given a payload holding text encoded earlier, and strings that look like a marker
    earlier = shared_json.encode([{"t": 1.5, "rss": 4096}])
    payload = ["ack", {"samples": earlier, "name": "\x00 0\x00", "n": None}]
    # When it is encoded as a packet would be
    text = shared_json.dumps(payload, separators=(",", ":"))
    # Then it decodes to the payload with the samples in place, the strings untouched
    assert json.loads(text) == [
        "ack",
        {"samples": [{"t": 1.5, "rss": 4096}], "name": "\x00 0\x00", "n": None},
    ]


def test_anything_else_unencodable_is_still_refused():
    with pytest.raises(TypeError):
        shared_json.dumps({"x": object()})


def test_a_flush_encodes_as_the_standard_library_would():
    # Given a flush of samples (what orjson encodes ten times a second) and odd payloads
    # orjson refuses: an int beyond 64 bits, a command line that is not valid UTF-8
    samples = [{"rss": 10**8 + i, "vms": 2**40, "t": 1764382000.123456 + i / 10} for i in range(20)]
    flush = ["samples", *({"pid": 100 + i, "children": False, "samples": [s]}
                          for i, s in enumerate(samples))]  # fmt: skip
    odd = [{"n": 2**70}, {"cmdline": ["python", "caf\udce9"]}, {1: "int key"}]
    for payload in [flush, *odd]:
        # When each is encoded as a packet would be
        text = shared_json.dumps(payload, separators=(",", ":"))
        # Then the text is what json.dumps gives (odd ones: through json itself), and the
        # samples' text is byte for byte the same
        assert json.loads(text) == json.loads(json.dumps(payload))
    compact = (",", ":")
    assert shared_json.dumps(flush, separators=compact) == json.dumps(flush, separators=compact)


class _Target:
    """What shared_backfill reads of a sampler target: its pid, tree flag and history."""

    def __init__(self, history: History) -> None:
        self.pid, self.children, self.history = 4242, False, history


def _thirty_minutes(now: float) -> History:
    history = History(18000)
    for i in range(18000):
        history.append({"t": now - (18000 - i) / 10, "rss": 10**8 + i * 4096, "vms": 10**9})
    return history


def test_a_room_joining_at_once_shares_one_encoding_of_the_backfill(monkeypatch):
    # Given a process with 30 minutes of history (and a cache of shared encodings of its own)
    history = _thirty_minutes(time.time())
    target = _Target(history)
    monkeypatch.setattr(events, "_backfills", shared_json.Shared())
    # When ten viewers ask for the same five minutes before the next sample
    acks = [events.shared_backfill(target, None, 300.0, 1000) for _ in range(10)]
    # Then the bucketed part was encoded once, and every ack says exactly what backfill says
    assert len(events._backfills._items) == 1
    expected, bucket = history.backfill(None, 300.0, 1000)
    assert bucket > 0
    for encoded, b in acks:
        assert b == bucket
        assert json.loads(shared_json.dumps({"samples": encoded}))["samples"] == expected
    # And a sample arriving changes the filling bucket only: still one shared encoding
    history.append({"t": time.time(), "rss": 2 * 10**8, "vms": 10**9})
    encoded, _ = events.shared_backfill(target, None, 300.0, 1000)
    assert json.loads(encoded.text) == history.backfill(None, 300.0, 1000)[0]


# -- one writer for every viewer ---------------------------------------------------------------


@pytest.fixture
def tight_server():
    """The real app and server in this process, its fan-out bounded to a few kilobytes."""
    app = create_app({"INTERVAL": 0.02, "TESTING": True})
    memdash = app.extensions["memdash"]
    memdash.fanout.max_backlog = 2048
    memdash.fanout.sndbuf = 4096
    sock = socket.create_server(("127.0.0.1", 0))
    server = make_server(app, sock)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield memdash, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.shutdown()
        memdash.stop()
        sock.close()


def test_a_viewer_that_stops_reading_is_dropped_and_the_others_go_on(tight_server, caplog):
    memdash, url = tight_server
    pid = os.getpid()  # this process: the server's own
    caplog.set_level(logging.WARNING, logger="dashboard.fanout")
    # Given a healthy viewer and one that watches, then never reads again (tiny receive buffer)
    healthy = Viewer(url)
    stalled = websocket.create_connection(
        url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
        timeout=5,
        sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)],
    )
    try:
        assert stalled.recv().startswith("0")
        stalled.send("40")
        stalled.send(f'420["watch",{{"pid":{pid}}}]')
        healthy.call("watch", {"pid": pid})
        # Then the server drops the stalled one, saying why
        wait_for(
            lambda: any("stalled: not reading" in r.getMessage() for r in caplog.records),
            20,
            "the stalled viewer to be dropped",
        )
        wait_for(lambda: len(memdash.roles) == 1, 10, "its session to end")
        # And the healthy viewer still gets a steady stream afterwards
        first = healthy.next("samples", where=lambda p: p["pid"] == pid)["samples"][-1]["t"]
        wait_for(
            lambda: (
                healthy.next("samples", where=lambda p: p["pid"] == pid)["samples"][-1]["t"]
                > first + 1.0
            ),
            10,
            "a further second of samples",
        )
    finally:
        healthy.close()
        stalled.close()


class _OpenSocket:
    """What Fanout.send reads of a viewer's WebSocket: open and upgraded."""

    dropped = False

    def usable(self) -> bool:
        return True


def test_a_corked_block_leaves_as_one_write_per_viewer():
    # Given a fan-out with two open viewers, its writes recorded
    fanout = Fanout(socketio.Server())
    viewers = {"e1": _OpenSocket(), "e2": _OpenSocket()}
    fanout._open = dict(viewers)
    fanout.recipients = lambda to: [("s1", "e1"), ("s2", "e2")]
    writes: list[tuple[object, bytes]] = []
    fanout._write = lambda ws, data: writes.append((ws, data))
    samples, system = fanout.frame("samples", ({"pid": 1},)), fanout.frame("system", ({"t": 1},))
    # When a tick's two messages are sent inside a corked block
    with fanout.corked():
        assert fanout.send("samples", ({"pid": 1},), None) == []
        fanout.send("system", ({"t": 1},), None)
        # Then nothing is written before its end
        assert writes == []
    # And then each viewer gets one write: both frames, in order
    assert writes == [(viewers["e1"], samples + system), (viewers["e2"], samples + system)]
    # And outside a block a message is written at once
    writes.clear()
    fanout.send("system", ({"t": 1},), "s1")
    assert len(writes) == 2 and writes[0][1] == system
