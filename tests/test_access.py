"""The one door: Host and Origin on every entry point (HTTP and both Socket.IO transports), the
presenter token, and the audience's read-only role — each checked against the real server.

Tests that need a bind beyond loopback live in test_room.py (a private network namespace)."""

from __future__ import annotations

import pytest
import requests
import websocket

from dashboard import access
from dashboard.app import create_app

FOREIGN_HOST = "evil.example"
FOREIGN_ORIGIN = "http://evil.example"


def polling(server, **headers) -> requests.Response:
    return requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", headers=headers)


def ws_handshake(server, **options) -> int:
    """The HTTP status of a WebSocket handshake (101 when it was accepted)."""
    url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    try:
        conn = websocket.create_connection(url, timeout=5, **options)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    conn.close()
    return 101


# -- a foreign Host or Origin is refused on every transport -----------------------------------


def test_polling_handshake_refuses_a_foreign_host(server):
    response = polling(server, Host=FOREIGN_HOST)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_host"


def test_polling_handshake_refuses_a_foreign_origin(server):
    response = polling(server, Origin=FOREIGN_ORIGIN)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_origin"


def test_websocket_handshake_refuses_a_foreign_host(server):
    assert ws_handshake(server, host=FOREIGN_HOST) == 403


def test_websocket_handshake_refuses_a_foreign_origin(server):
    assert ws_handshake(server, origin=FOREIGN_ORIGIN) == 403


def test_another_port_on_loopback_is_a_foreign_origin(server):
    # A page served by some other local program is not memdash's page
    response = polling(server, Origin=f"http://127.0.0.1:{server.port + 1}")
    assert response.json()["error"]["code"] == "bad_origin"


@pytest.mark.parametrize("path", ["/", "/api/system", "/api/runs", "/no/such/route"])
def test_every_route_refuses_a_foreign_host(server, path):
    response = requests.get(server.url + path, headers={"Host": FOREIGN_HOST})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_host"


def test_loopback_with_the_served_origin_or_none_is_accepted(server):
    served = f"http://127.0.0.1:{server.port}"
    assert polling(server).status_code == 200  # no Origin: a non-browser client
    assert polling(server, Origin=served).status_code == 200
    assert polling(server, Host=f"localhost:{server.port}").status_code == 200
    assert ws_handshake(server) == 101
    assert ws_handshake(server, origin=served) == 101


def test_a_refused_handshake_leaves_the_server_serving(server, viewer):
    for _ in range(5):
        polling(server, Host=FOREIGN_HOST)
        ws_handshake(server, origin=FOREIGN_ORIGIN)
    assert viewer.next("system", timeout=5)["total"] > 0


# -- the access policy itself ------------------------------------------------------------------


def test_loopback_without_share_makes_everyone_presenter():
    policy = access.Access.for_bind("127.0.0.1", share=False)
    assert policy.token is None and policy.role(None) == access.PRESENTER
    assert policy.allowed_hosts >= {"127.0.0.1", "localhost", "::1"}


def test_any_bind_beyond_loopback_turns_the_token_on():
    for host, share in [("0.0.0.0", False), ("127.0.0.1", True), ("::", False)]:
        policy = access.Access.for_bind(host, share)
        assert policy.token and len(policy.token) >= 20
        assert policy.role(None) == access.AUDIENCE
        assert policy.role(f"{access.COOKIE}={policy.token}") == access.PRESENTER
        assert policy.role(f"{access.COOKIE}=not-it") == access.AUDIENCE
        assert "0.0.0.0" not in policy.allowed_hosts and "evil.example" not in policy.allowed_hosts
    assert (
        access.Access.for_bind("0.0.0.0", False).token
        != access.Access.for_bind("0.0.0.0", False).token
    )


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("app --api-token=abc123 --port 80", "app --api-token=•••• --port 80"),
        ("app --password hunter2 -v", "app --password •••• -v"),
        (
            "env DB_PASSWORD=s3cret API_KEY=k python x.py",
            "env DB_PASSWORD=•••• API_KEY=•••• python x.py",
        ),
        ("node server.js --secret=x --key y", "node server.js --secret=•••• --key ••••"),
        ("python3 -m http.server 8000", "python3 -m http.server 8000"),
    ],
)
def test_secret_looking_arguments_are_masked(given, shown):
    assert access.mask_cmdline(given) == shown


def test_the_audience_can_reach_only_what_is_marked_readable():
    # Given an app whose visitors are audience (a token is set, nobody has the cookie)
    policy = access.Access(token=access.new_token())
    app = create_app({"ACCESS": policy})
    client = app.test_client()
    readable = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "memdash_audience_ok", False)
    }
    # Then only reading routes are open to them, and every other route, whatever its method,
    # answers presenter_only (so a route added later without the mark is closed by default)
    assert readable == {
        "/",
        "/static/<version>/<path:name>",
        "/api/system",
        "/api/processes/<pid>",
        "/api/processes/<pid>/samples",
        "/api/processes/<pid>/tree",
        "/api/processes/<pid>/growth",
        "/api/scenarios",
        "/api/runs",
        "/api/recording",
        "/metrics",
    }
    for rule in app.url_map.iter_rules():
        if rule.rule in readable:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", "1").replace(f"<path:{name}>", "1")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, json={})
            assert response.status_code == 403, (method, path)
            assert response.get_json()["error"]["code"] == "presenter_only", (method, path)


def test_the_token_becomes_an_httponly_strict_cookie():
    policy = access.Access(token=access.new_token())
    client = create_app({"ACCESS": policy}).test_client()
    page = client.get(f"/?token={policy.token}")
    assert page.status_code == 200
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith(f"{access.COOKIE}={policy.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert 'data-role="presenter"' in page.get_data(as_text=True)
    # and a wrong token, or one of an earlier start, is refused with the one error shape
    for wrong in ["nope", access.new_token()]:
        refused = create_app({"ACCESS": policy}).test_client().get(f"/?token={wrong}")
        assert refused.status_code == 403
        assert refused.get_json()["error"]["code"] == "bad_token"
    # and the token in a header it was never given in counts for nothing
    other = create_app({"ACCESS": policy}).test_client()
    sneaky = other.get("/api/processes", headers={"Authorization": f"Bearer {policy.token}"})
    assert sneaky.get_json()["error"]["code"] == "presenter_only"


def test_json_nested_100000_levels_deep_is_a_clear_400(server):
    body = "[" * 100_000 + "]" * 100_000
    response = requests.post(
        f"{server.url}/api/scenarios/unbounded_cache/start",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert requests.get(f"{server.url}/api/system").status_code == 200
