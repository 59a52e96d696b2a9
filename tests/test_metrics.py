"""/metrics in the Prometheus text format, and the server's growth verdicts on the wire."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from dashboard.testing import wait_for


def scrape(server) -> dict[str, list]:
    response = requests.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def test_metrics_parse_and_match_proc_at_scrape_time(server, viewer, allocator):
    # Given a watched process that holds 64 MiB
    allocator.alloc(64)
    viewer.call("watch", {"pid": allocator.pid})
    pid = str(allocator.pid)

    def rss_sample():
        samples = scrape(server).get("memdash_process_rss_bytes", [])
        return next((s for s in samples if s.labels["pid"] == pid), None)

    sample = wait_for(rss_sample, timeout=10, message="the allocator in /metrics")
    # Then the gauge is labelled with pid and name, and agrees with /proc within 2%
    assert sample.labels["name"].startswith("python")
    assert abs(sample.value - allocator.vmrss()) <= 0.02 * allocator.vmrss()
    # and the slower figures, the growth rate, the server's own CPU and the viewers are there
    families = wait_for(
        lambda: (
            (f := scrape(server))
            and any(s.labels["pid"] == pid for s in f.get("memdash_process_uss_bytes", []))
            and f
        ),
        timeout=10,
        message="uss in /metrics",
    )
    assert any(s.labels["pid"] == pid for s in families["memdash_process_growth_bytes_per_minute"])
    assert families["memdash_server_process_cpu_seconds"][0].value > 0
    assert families["memdash_viewers"][0].value >= 1


def test_metrics_has_the_same_host_guard(server):
    response = requests.get(f"{server.url}/metrics", headers={"Host": "evil.example"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_host"


def test_growth_arrives_once_a_second_for_each_watched_process(server, viewer, allocator):
    viewer.call("watch", {"pid": allocator.pid})
    first = viewer.next("growth", timeout=5, where=lambda g: g["pid"] == allocator.pid)
    second = viewer.next("growth", timeout=5, where=lambda g: g["pid"] == allocator.pid)
    for message in (first, second):
        assert message["children"] is False
        assert set(message["growth"]) == {"bytes_per_min", "verdict", "window_s"}
        assert message["growth"]["verdict"] in ("warming_up", "stable", "growing", "shrinking")
    assert second["growth"]["window_s"] >= first["growth"]["window_s"]


def test_growth_of_a_process_nobody_samples_is_not_watching(server, viewer, allocator):
    # Given a process memdash does not sample
    response = requests.get(f"{server.url}/api/processes/{allocator.pid}/growth")
    # Then the one error shape says so, and the server goes on
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_watching"
    # and once it is watched, the verdict is the one the growth event carries
    viewer.call("watch", {"pid": allocator.pid})
    pushed = viewer.next("growth", timeout=5, where=lambda g: g["pid"] == allocator.pid)
    asked = wait_for(
        lambda: (
            (r := requests.get(f"{server.url}/api/processes/{allocator.pid}/growth"))
            and r.status_code == 200
            and r.json()
        ),
        timeout=5,
        message="the growth verdict over REST",
    )
    assert asked["growth"]["verdict"] in ("warming_up", "stable", "growing", "shrinking")
    assert set(asked["growth"]) == set(pushed["growth"])
