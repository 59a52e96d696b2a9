"""Run inside the test's network namespace by tests/test_room.py: plays a presenter and an
audience member against ``memdash --share`` at the namespace's address and prints what each
was answered, as one JSON object. (Test traffic never leaves the namespace.)

Usage: python tests/room_probe.py BASE_URL TOKEN OLD_TOKEN PID
"""

from __future__ import annotations

import json
import sys
import threading

import requests
import socketio

from dashboard.app import create_app


def routes() -> list[tuple[str, str]]:
    """Every (method, path) the app serves that is not marked readable by the audience."""
    app = create_app()
    found = []
    for rule in app.url_map.iter_rules():
        if getattr(app.view_functions[rule.endpoint], "memdash_audience_ok", False):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", "1").replace(f"<path:{name}>", "1")
        found += [(m, path) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def error_code(response: requests.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


class Client:
    """A real Socket.IO client that remembers the events it got."""

    def __init__(self, base: str, cookies: dict | None = None):
        self.events: dict[str, list] = {}
        self.got = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record)
        header = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
        self.sio.connect(base, headers={"Cookie": header} if header else {}, wait_timeout=10)

    def _record(self, event, *args):
        with self.got:
            self.events.setdefault(event, []).append(args[0] if args else None)
            self.got.notify_all()

    def wait(self, event: str, where=lambda payload: True, timeout: float = 10):
        with self.got:
            ok = self.got.wait_for(
                lambda: any(where(p) for p in self.events.get(event, [])), timeout
            )
        return [p for p in self.events.get(event, []) if where(p)][-1] if ok else None

    def call(self, event: str, payload=None):
        return self.sio.call(event, payload, timeout=10)


def main() -> None:
    base, token, old_token, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    out: dict = {}
    audience = requests.Session()
    presenter = requests.Session()

    page = presenter.get(f"{base}/?token={token}")
    out["presenter_page"] = [page.status_code, 'data-role="presenter"' in page.text]
    out["cookie"] = page.headers.get("Set-Cookie", "")
    out["audience_page"] = 'data-role="audience"' in audience.get(f"{base}/").text
    out["old_token"] = error_code(requests.get(f"{base}/?token={old_token}"))
    out["wrong_token"] = error_code(requests.get(f"{base}/?token=nope"))
    out["header_token"] = error_code(
        requests.get(f"{base}/api/processes", headers={"X-Memdash-Token": token})
    )
    out["audience_routes"] = {
        f"{m} {p}": [r.status_code, error_code(r)]
        for m, p in routes()
        for r in [audience.request(m, base + p, json={})]
    }
    out["presenter_list"] = presenter.get(f"{base}/api/processes?limit=5").status_code
    out["audience_list"] = error_code(audience.get(f"{base}/api/processes"))
    out["audience_unshown"] = error_code(audience.get(f"{base}/api/processes/{pid}"))

    viewer = Client(base)
    host = Client(base, presenter.cookies.get_dict())
    out["hello"] = [viewer.wait("hello"), host.wait("hello")]
    out["audience_view"] = viewer.call("view", {"watches": [{"pid": pid}]})
    out["audience_watch_unshown"] = viewer.call("watch", {"pid": pid})
    out["presenter_view"] = host.call("view", {"watches": [{"pid": pid}], "metric": "rss"})
    out["relayed"] = viewer.wait("view", lambda v: v and v.get("metric") == "rss")
    ack = viewer.call("watch", {"pid": pid})
    out["audience_watch_shown"] = sorted(ack) if "error" not in ack else ack
    out["audience_samples"] = viewer.wait("samples", lambda b: b and b["pid"] == pid) is not None
    out["audience_process"] = audience.get(f"{base}/api/processes/{pid}").json().get("cmdline")
    late = Client(base)
    out["late_view"] = late.wait("view")
    flood = [viewer.call("unwatch", {"pid": 1}) for _ in range(60)]
    out["flood"] = sorted({(a.get("error") or {}).get("code", "ok") for a in flood})
    for c in (viewer, host, late):
        c.sio.disconnect()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
