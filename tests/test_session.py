"""A dashboard session is recorded as it runs, and the page can take it away: recording
status, CSV/JSON/HTML exports of the session so far, and the kept artefacts."""

from __future__ import annotations

import csv
import io

import requests

from dashboard.testing import wait_for


def test_a_session_is_recorded_and_exported_from_the_page(server, viewer, allocator):
    # Given a server (recording by default, into the test's data directory) watching a process
    viewer.call("watch", {"pid": allocator.pid})
    status = requests.get(f"{server.url}/api/recording").json()["recording"]
    assert status["path"].endswith(".sqlite") and status["error"] is None

    # When the page asks for the session as CSV
    def rows():
        response = requests.get(f"{server.url}/api/export?format=csv&pid={allocator.pid}")
        assert response.status_code == 200
        assert "attachment" in response.headers["Content-Disposition"]
        found = list(csv.DictReader(io.StringIO(response.text)))
        return found if len(found) >= 5 else None

    found = wait_for(rows, timeout=10, message="five recorded samples")
    # Then every row is that process, with its RSS
    assert {row["pid"] for row in found} == {str(allocator.pid)}
    assert all(int(row["rss"]) > 0 for row in found)
    # and the JSON and HTML exports work too, and the artefacts list answers
    series = requests.get(f"{server.url}/api/export?format=json").json()["series"]
    assert any(s["pid"] == allocator.pid for s in series)
    page = requests.get(f"{server.url}/api/export?format=html")
    assert page.headers["Content-Type"].startswith("text/html") and "<html" in page.text
    assert requests.get(f"{server.url}/api/artefacts").json() == {"artefacts": []}


def test_a_bad_export_request_gets_the_one_error_shape(server):
    response = requests.get(f"{server.url}/api/export?format=xlsx")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    gone = requests.get(f"{server.url}/api/artefacts/..%2F..%2Fetc%2Fpasswd")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"
