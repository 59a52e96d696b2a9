"""Exports of a recording (CSV, JSON) and the min/max envelope used to draw long series.

CSV follows psrecord and mprof users' habits: one row per sample, a header line, epoch
seconds, bytes, and an empty cell where a figure was not measured in that sample.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
from typing import IO, Iterator

from .recording import FIELDS, Recording

CSV_HEADER = ("time", "pid", "name", *FIELDS)


@contextlib.contextmanager
def _text_out(out: str | os.PathLike | IO[str]) -> Iterator[IO[str]]:
    if hasattr(out, "write"):
        yield out
    else:
        with open(out, "w", newline="", encoding="utf-8") as f:
            yield f


def to_csv(
    recording: Recording,
    out: str | os.PathLike | IO[str],
    pids: list[int] | None = None,
    since: float | None = None,
    until: float | None = None,
) -> int:
    """Write one row per sample (time order) to a path or text stream; returns the row count.
    ``pids`` are OS PIDs; ``since`` is exclusive, ``until`` inclusive (epoch seconds)."""
    rows, count = recording.rows(pids, since, until), 0

    def counted() -> Iterator[tuple]:
        nonlocal count
        for count, row in enumerate(rows, 1):  # noqa: B007 - the count is what we keep
            yield row

    with _text_out(out) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(counted())  # in C; None is written as an empty cell
    return count


def to_json(
    recording: Recording,
    out: str | os.PathLike | IO[str] | None = None,
    pids: list[int] | None = None,
    since: float | None = None,
    until: float | None = None,
) -> dict:
    """The recording in the API's sample format::

        {"meta": {...}, "series": [{"pid", "children", "process": {...}, "samples": [...]}]}

    one series per recorded process (a process watched with and without its children gives
    two). Written to ``out`` when given; returned either way."""
    series = []
    for process in recording.processes():
        if pids and process["pid"] not in pids:
            continue
        samples = recording.samples(process["id"], since, until)
        series.append(
            {
                "pid": process["pid"],
                "children": process["children"],
                "process": process,
                "samples": samples,
            }  # fmt: skip
        )
    document = {"meta": recording.meta, "series": series}
    if out is not None:
        with _text_out(out) as f:
            json.dump(document, f, separators=(",", ":"))
    return document


def envelope(series: list[dict] | dict, max_points: int, fields: tuple[str, ...] = FIELDS) -> dict:
    """Downsample a series to at most ``max_points`` equal time buckets, keeping each
    bucket's min and max so a one-sample spike stays visible::

        {"t": [mean time per bucket], "n": [samples per bucket],
         field: {"min": [...], "max": [...], "mean": [...]}, ...}

    ``series`` is a list of samples (API format, oldest first) or columns
    ``{"t": [...], field: [value or None, ...]}``. Empty buckets are left out; a series that
    fits is returned sample by sample. Only fields measured at least once appear. The same
    shape as :meth:`dashboard.recording.Recording.envelope`, which does this in SQL."""
    if isinstance(series, dict):
        ts = list(series.get("t", ()))
        columns = {f: list(series[f]) for f in fields if f in series}
    else:
        ts = [s["t"] for s in series]
        columns = {f: [s.get(f) for s in series] for f in fields}
    out: dict = {"t": [], "n": []}
    if not ts:
        return out
    n = max(1, max_points)
    if len(ts) <= n:
        bounds = list(range(len(ts) + 1))
    else:
        first, span = ts[0], (ts[-1] - ts[0]) or 1.0
        index = [min(int((t - first) * n / span), n - 1) for t in ts]
        # Sorted times give sorted bucket numbers: a bucket is a slice between two changes.
        bounds = [0, *(i for i in range(1, len(ts)) if index[i] != index[i - 1]), len(ts)]
    slices = list(itertools.pairwise(bounds))
    out["t"] = [sum(ts[a:b]) / (b - a) for a, b in slices]
    out["n"] = [b - a for a, b in slices]
    for name, values in columns.items():
        lows, highs, means = [], [], []
        for a, b in slices:
            present = [v for v in values[a:b] if v is not None]
            if present:
                lows.append(min(present))
                highs.append(max(present))
                means.append(round(sum(present) / len(present)))
            else:
                lows.append(None)
                highs.append(None)
                means.append(None)
        if any(v is not None for v in highs):
            out[name] = {"min": lows, "max": highs, "mean": means}
    return out
