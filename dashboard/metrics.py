"""``GET /metrics``: what memdash watches, in the Prometheus text format, so it plugs into an
existing Prometheus and Grafana.

prometheus_client writes the exposition (no hand-written format). A custom collector yields
gauges at scrape time from the last figures of every sampled process, which it keeps as a
sampler sink (a dict update per flush: the slower figures — uss, pss, swap, heap — arrive in
about one sample in ten). The registry is per app (tests build many apps), with
prometheus_client's own ProcessCollector for memdash's own CPU and memory.
"""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

from . import access
from .extension import Memdash, get_memdash

bp = Blueprint("metrics", __name__)

# sample field -> (metric name, help)
GAUGES = {
    "rss": ("memdash_process_rss_bytes", "Resident set size"),
    "uss": ("memdash_process_uss_bytes", "Unique set size (private memory)"),
    "pss": ("memdash_process_pss_bytes", "Proportional set size"),
    "swap": ("memdash_process_swap_bytes", "Swapped-out memory"),
    "heap_used": (
        "memdash_process_heap_used_bytes",
        "Language heap in use (as reported)",
    ),
}
LABELS = ("pid", "name", "children")


class WatchedProcesses:
    """A prometheus_client collector over the sampler's latest sample of every held target.
    Fields sampled less often (uss, pss, swap, heap) are the last value read."""

    def __init__(self, memdash: Memdash):
        self.memdash = memdash
        self._last: dict[tuple[int, bool], tuple[list[str], dict]] = {}

    # -- the sampler sink ---------------------------------------------------------------------

    def flushed(self, batches) -> None:
        for target, samples in batches:
            key = (target.pid, target.children)
            known = self._last.get(key)
            if known is None:  # labelled once per series, not at every flush
                name = target.process.get("name", "")
                labels = [str(target.pid), name, str(target.children).lower()]
                known = self._last[key] = (labels, {})
            values = known[1]
            for sample in samples:
                values.update(sample)

    def exited(self, target, t: float, reason: str) -> None:
        self._last.pop((target.pid, target.children), None)

    # -- the collector -----------------------------------------------------------------------

    def collect(self):
        families = {
            field: GaugeMetricFamily(name, text, labels=LABELS)
            for field, (name, text) in GAUGES.items()
        }
        growth = GaugeMetricFamily(
            "memdash_process_growth_bytes_per_minute",
            "Growth rate of RSS as memdash's estimator judges it",
            labels=LABELS,
        )
        growth_of = getattr(self.memdash, "growth_of", None)
        held = {(t.pid, t.children) for t in self.memdash.sampler.targets() if t.exited_at is None}
        for key, (labels, values) in list(self._last.items()):
            if key not in held:  # forgotten by the sampler since
                self._last.pop(key, None)
                continue
            for field, family in families.items():
                if field in values:
                    family.add_metric(labels, values[field])
            rate = growth_of(*key) if growth_of else None
            if rate is not None:
                growth.add_metric(labels, rate["bytes_per_min"])
        yield from families.values()
        yield growth
        viewers = GaugeMetricFamily("memdash_viewers", "Socket.IO viewers connected")
        viewers.add_metric([], len(self.memdash.roles))
        yield viewers


def registry_for(collector: WatchedProcesses) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    ProcessCollector(namespace="memdash_server", registry=registry)  # the server's own CPU, memory
    return registry


@bp.get("/metrics")
@access.audience_ok  # a scraper has no presenter cookie; the Host/Origin guard still applies
def metrics():
    registry = get_memdash().metrics_registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
