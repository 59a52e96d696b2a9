"""Bad input gets one clear error shape and nothing else breaks (REST and Socket.IO)."""

from __future__ import annotations

import os
import subprocess

import pytest


def assert_error(body: dict, code: str) -> None:
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# -- REST ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/api/processes/abc", 400, "bad_pid"),
        ("/api/processes/-1", 400, "bad_pid"),
        ("/api/processes/0", 400, "bad_pid"),
        ("/api/processes/99999999999999999999", 400, "bad_pid"),
        ("/api/processes/2/samples", 400, "kernel_thread"),
        ("/api/processes?limit=abc", 400, "bad_request"),
        ("/api/processes?limit=0", 400, "bad_request"),
        ("/api/processes?limit=2.5", 400, "bad_request"),
        ("/api/processes/1/samples?since=nan", 400, "bad_request"),
        ("/api/processes/1/samples?since=yesterday", 400, "bad_request"),
        ("/api/processes/1/mappings?seconds=999", 400, "bad_request"),
        ("/api/nothing-here", 404, "not_found"),
        ("/assets/evil.js", 404, "not_found"),
    ],
)
def test_rest_bad_input(client, path, status, code):
    response = client.get(path)
    assert response.status_code == status
    assert_error(response.get_json(), code)


def test_rest_vanished_pid_is_404(client):
    proc = subprocess.Popen(["true"])
    proc.wait()
    response = client.get(f"/api/processes/{proc.pid}")
    assert response.status_code == 404
    assert_error(response.get_json(), "no_such_process")


def test_rest_zombie_is_409(client):
    proc = subprocess.Popen(["true"])
    try:
        from tests.conftest import wait_for

        wait_for(
            lambda: client.get(f"/api/processes/{proc.pid}").get_json().get("status") == "zombie"
        )
        response = client.get(f"/api/processes/{proc.pid}/samples")
        assert response.status_code == 409
        assert_error(response.get_json(), "zombie")
    finally:
        proc.wait()


def test_rest_wrong_method_is_405_in_the_same_shape(client):
    response = client.post("/api/system", json={})
    assert response.status_code == 405
    assert_error(response.get_json(), "method_not_allowed")


def test_a_plain_form_post_cannot_start_a_run(client):
    # A page elsewhere can make a browser POST a form to 127.0.0.1, but not with a JSON type
    response = client.post("/api/scenarios/unbounded_cache/compare", data={"runtime": "python"})
    assert response.status_code == 415
    assert_error(response.get_json(), "unsupported_media_type")
    assert client.get("/api/runs").get_json()["runs"] == []


def test_a_foreign_host_name_is_refused(client):
    # DNS rebinding: evil.example resolving to 127.0.0.1 must not reach the API
    response = client.get("/api/processes", headers={"Host": "evil.example:8765"})
    assert response.status_code == 403
    assert_error(response.get_json(), "bad_host")
    assert client.get("/api/system", headers={"Host": "127.0.0.1:8765"}).status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"a string"', b"null"])
def test_rest_malformed_json_is_400(client, body):
    response = client.post(
        "/api/scenarios/unbounded_cache/start", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert_error(response.get_json(), "bad_request")


@pytest.mark.parametrize("seconds", ["5", True, 0, 61, None])
def test_rest_leak_report_seconds_out_of_range_is_400(client, seconds):
    response = client.post("/api/runs/r1/leak-report", json={"seconds": seconds})
    assert response.status_code == 400
    assert_error(response.get_json(), "bad_request")
    assert "seconds must be" in response.get_json()["error"]["message"]


# -- Socket.IO ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, code",
    [
        (None, "bad_request"),
        ("1234", "bad_request"),
        ([1234], "bad_request"),
        ({}, "bad_request"),
        ({"pid": "1234"}, "bad_pid"),
        ({"pid": 12.5}, "bad_pid"),
        ({"pid": True}, "bad_pid"),
        ({"pid": -1}, "bad_pid"),
        ({"pid": 0}, "bad_pid"),
        ({"pid": 2**62}, "bad_pid"),
        ({"pid": 2}, "kernel_thread"),
        ({"pid": os.getpid(), "children": "yes"}, "bad_request"),
        ({"pid": os.getpid(), "since": "yesterday"}, "bad_request"),
        ({"pid": os.getpid(), "since": True}, "bad_request"),
        ({"pid": os.getpid(), "since": -1.0}, "bad_request"),
    ],
)
def test_socket_bad_watch_payloads(viewer, payload, code):
    assert_error(viewer.call("watch", payload), code)


def test_socket_vanished_and_zombie_pids(viewer):
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert_error(viewer.call("watch", {"pid": gone.pid}), "no_such_process")
    zombie = subprocess.Popen(["true"])
    try:
        from tests.conftest import wait_for

        body = wait_for(
            lambda: (
                (b := viewer.call("watch", {"pid": zombie.pid})).get("error", {}).get("code")
                == "zombie"
                and b
            ),
            message="a zombie to be refused",
        )
        assert_error(body, "zombie")
    finally:
        zombie.wait()


def test_socket_unknown_event_and_bad_unwatch(viewer):
    assert_error(viewer.call("launch_missiles", {"pid": 1}), "unknown_event")
    assert_error(viewer.call("unwatch", "nope"), "bad_request")
    assert_error(viewer.call("unwatch", {"pid": os.getpid(), "children": "yes"}), "bad_request")
    assert_error(viewer.call("unwatch", {"pid": os.getpid()}), "not_watching")


def test_socket_too_many_watches_is_429_and_the_rest_keep_working(viewer_factory, make_allocator):
    # Given a viewer that already watches the most a viewer may (32), through many processes
    greedy = viewer_factory()
    children = [subprocess.Popen(["sleep", "60"]) for _ in range(33)]
    try:
        acks = [greedy.call("watch", {"pid": c.pid}) for c in children]
        # Then the 33rd is refused with a clear error, and the first 32 are fine
        assert all("error" not in a for a in acks[:32])
        assert_error(acks[32], "too_many_watches")
        # And another viewer is not affected
        other = viewer_factory()
        child = make_allocator()
        assert "error" not in other.call("watch", {"pid": child.pid})
        other.next("samples", where=lambda p: p["pid"] == child.pid)
    finally:
        for c in children:
            c.kill()
            c.wait()


def test_server_survives_a_storm_of_bad_payloads(viewer_factory, allocator):
    # Given a good viewer watching a process
    good = viewer_factory()
    good.call("watch", {"pid": allocator.pid})
    # When another viewer sends hundreds of bad payloads
    bad = viewer_factory()
    for i in range(200):
        bad.call("watch", [{"pid": i}, None, "x", {"pid": -i}][i % 4])
    # Then the good viewer still receives samples
    good.next("samples", where=lambda p: p["pid"] == allocator.pid)
