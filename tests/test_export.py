"""Exports of real recordings (CSV, JSON) and the min/max envelope for long series."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from dashboard import errors, memory
from dashboard.export import CSV_HEADER, envelope, to_csv, to_json
from dashboard.recording import FIELDS, Recorder, Recording
from tests.conftest import MiB

T0 = 1_800_000_000.0


def fast(t: float, rss: int) -> dict:
    return {"t": t, "rss": rss, "vms": 4 * rss, "shared": 4096, "text": 8192, "data": rss // 2}


@pytest.fixture
def recording(tmp_path):
    """Two processes sampled at 10 Hz for 2 s; the second reports details and heap once a
    second, and is also watched with its children."""
    rec = Recorder(tmp_path / "s.sqlite", started_at=T0)
    rec.add_process(100, 1.5, False, {"name": "web", "cmdline": "web --port 1"})
    rec.add_process(200, 2.5, False, {"name": "worker"})
    rec.add_process(200, 2.5, True, {"name": "worker"})
    for i in range(20):
        t = T0 + i / 10
        slow = fast(t, 200 * MiB + i * 4096)
        if i % 10 == 0:
            slow.update(uss=150 * MiB, pss=160 * MiB, swap=0, anon=90 * MiB, heap_used=1234567)
        rec.add_batches(
            [
                {"pid": 100, "children": False, "samples": [fast(t, 100 * MiB + i * 4096)]},
                {"pid": 200, "children": False, "samples": [slow]},
                {"pid": 200, "children": True, "samples": [{**fast(t, 300 * MiB), "children": 2}]},
            ]
        )
    rec.close()
    assert rec.error is None
    with Recording(tmp_path / "s.sqlite") as rd:
        yield rd


def parse(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_one_row_per_sample_in_time_order_with_empty_cells(recording):
    # When the whole recording is exported
    out = io.StringIO()
    count = to_csv(recording, out)
    # Then the header names time, pid, name and every field
    assert out.getvalue().splitlines()[0] == ",".join(CSV_HEADER)
    rows = parse(out.getvalue())
    assert count == len(rows) == 60
    assert [float(r["time"]) for r in rows] == sorted(float(r["time"]) for r in rows)
    first = rows[:3]
    assert [(r["pid"], r["name"], r["children"]) for r in first] == [
        ("100", "web", ""),
        ("200", "worker", ""),
        ("200", "worker", "2"),
    ]
    # and the figures are exact bytes, empty where a figure was not measured
    assert float(first[0]["time"]) == T0
    assert int(first[0]["rss"]) == 100 * MiB and first[0]["uss"] == ""
    assert int(first[1]["uss"]) == 150 * MiB and int(first[1]["heap_used"]) == 1234567
    assert rows[4]["uss"] == "" and rows[4]["heap_used"] == ""
    assert int(rows[-3]["rss"]) == 100 * MiB + 19 * 4096


def test_csv_filters_by_pid_and_time_and_writes_to_a_path(recording, tmp_path):
    # When exporting pid 100 after T0 + 0.5 up to T0 + 1.0, to a file
    count = to_csv(recording, tmp_path / "out.csv", pids=[100], since=T0 + 0.5, until=T0 + 1.0)
    rows = parse((tmp_path / "out.csv").read_text())
    # Then only its five samples in (T0 + 0.5, T0 + 1.0] are there
    assert count == 5
    assert {r["pid"] for r in rows} == {"100"}
    assert [float(r["time"]) for r in rows] == pytest.approx([T0 + k / 10 for k in range(6, 11)])


def test_json_is_the_api_sample_format(recording, tmp_path):
    # When exported to JSON
    to_json(recording, tmp_path / "out.json")
    document = json.loads((tmp_path / "out.json").read_text())
    # Then there is one series per recorded process, like the Socket.IO batches
    series = document["series"]
    assert [(s["pid"], s["children"]) for s in series] == [(100, False), (200, False), (200, True)]
    assert series[0]["process"]["name"] == "web"
    assert document["meta"]["started_at"] == T0
    # and samples leave out what was not measured (never null)
    samples = series[1]["samples"]
    assert len(samples) == 20
    assert samples[0] == {**fast(T0, 200 * MiB), "uss": 150 * MiB, "pss": 160 * MiB, "swap": 0,
                          "anon": 90 * MiB, "heap_used": 1234567}  # fmt: skip
    assert samples[1] == fast(T0 + 0.1, 200 * MiB + 4096)
    assert all(None not in s.values() for one in series for s in one["samples"])
    only = to_json(recording, pids=[100], since=T0 + 1.5)
    assert [len(s["samples"]) for s in only["series"]] == [4]


def spiky(n: int = 10_000) -> list[dict]:
    """A flat series sampled at 10 Hz with one 1-sample spike and one 1-sample dip."""
    out = [{"t": T0 + i / 10, "rss": 100 * MiB} for i in range(n)]
    out[n * 43 // 100]["rss"] = 900 * MiB
    out[n * 77 // 100]["rss"] = 10 * MiB
    for i in range(0, n, 10):
        out[i]["uss"] = 50 * MiB
    return out


def test_envelope_keeps_spikes_in_at_most_n_buckets():
    # Given 10 000 samples with a one-sample spike and dip
    samples = spiky()
    # When cut down to 200 points
    env = envelope(samples, 200)
    # Then there are at most 200 buckets covering every sample
    assert len(env["t"]) <= 200 and sum(env["n"]) == 10_000
    assert env["t"] == sorted(env["t"])
    # and the spike and the dip are still there
    assert max(env["rss"]["max"]) == 900 * MiB
    assert min(env["rss"]["min"]) == 10 * MiB
    assert sorted(set(env["rss"]["mean"]))[1:-1] == [100 * MiB]
    # and a field measured now and then has its own min/max; one never measured is absent
    assert set(env["uss"]["max"]) == {50 * MiB}
    assert "pss" not in env


def test_envelope_of_a_short_series_is_the_series_and_columns_work_too():
    samples = spiky(50)
    env = envelope(samples, 100)
    assert env["t"] == [s["t"] for s in samples] and set(env["n"]) == {1}
    assert env["rss"]["min"] == env["rss"]["max"] == [s["rss"] for s in samples]
    columns = {"t": [s["t"] for s in spiky()], "rss": [s["rss"] for s in spiky()]}
    assert envelope(columns, 300)["rss"] == envelope(spiky(), 300, fields=("rss",))["rss"]
    assert envelope([], 10) == {"t": [], "n": []}


def test_the_recordings_sql_envelope_matches_the_python_one(tmp_path):
    # Given the spiky series recorded to a file
    rec = Recorder(tmp_path / "s.sqlite", started_at=T0)
    rec.add_process(1, 1.0, False, {"name": "p"})
    rec.add_batches([{"pid": 1, "children": False, "samples": spiky()}])
    rec.close()
    with Recording(tmp_path / "s.sqlite") as rd:
        # When both cut it to 256 buckets (prime to the 9999 steps: no sample sits exactly on
        # a bucket edge, where float rounding may fall either way)
        in_sql = rd.envelope(1, 256)
        in_python = envelope(rd.samples(1), 256)
        # Then they agree
        assert in_sql.keys() == in_python.keys() == {"t", "n", "rss", "uss"}
        assert in_sql["n"] == in_python["n"]
        assert in_sql["t"] == pytest.approx(in_python["t"])
        for field in ("rss", "uss"):
            assert in_sql[field]["min"] == in_python[field]["min"]
            assert in_sql[field]["max"] == in_python[field]["max"]
            assert in_sql[field]["mean"] == pytest.approx(in_python[field]["mean"], abs=1)
        # and a window, a field list and a short window work the same way
        window = rd.envelope(1, 5, since=T0 + 100, until=T0 + 101, fields=("rss",))
        assert window.keys() == {"t", "n", "rss"} and sum(window["n"]) == 10
        assert rd.envelope(1, 10, since=T0 + 5000) == {"t": [], "n": []}
        with pytest.raises(errors.BadRequest):
            rd.envelope(1, 10, fields=("rss; DROP TABLE samples",))


def test_a_real_growing_process_exports_what_proc_said(tmp_path, allocator):
    # Given a real process read through /proc while it grows, with VmRSS read alongside
    reader = memory.StatmReader(allocator.pid)
    rec = Recorder(tmp_path / "real.sqlite")
    rec.add_process(allocator.pid, memory.identify(allocator.pid).create_time, False,
                    memory.describe(allocator.pid))  # fmt: skip
    proc_rss = []
    try:
        for _ in range(5):
            allocator.alloc(8)
            s = reader.read()
            s["t"] = time.time()
            proc_rss.append(allocator.vmrss())
            rec.add_batches([{"pid": allocator.pid, "children": False, "samples": [s]}])
    finally:
        reader.close()
        rec.close()
    # When exported to CSV
    with Recording(tmp_path / "real.sqlite") as rd:
        out = io.StringIO()
        to_csv(rd, out, pids=[allocator.pid])
    rows = parse(out.getvalue())
    # Then each row's rss is what /proc reported at that moment, growing by ~8 MiB a step
    rss = [int(r["rss"]) for r in rows]
    assert len(rss) == 5
    for got, vmrss in zip(rss, proc_rss, strict=True):
        assert abs(got - vmrss) <= 0.02 * vmrss
    assert rss[-1] - rss[0] >= 4 * 7 * MiB
    assert rows[0]["name"].startswith("python")
    assert set(CSV_HEADER) - set(rows[0]) == set() and len(FIELDS) + 3 == len(rows[0])
