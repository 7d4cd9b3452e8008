"""Counts and latencies of proxied requests, read by Prometheus at scrape time.

A prometheus_client Counter and Histogram cost two locked updates and a bucket walk per request,
a noticeable share of the fast path's CPU (docs/benchmarks/router.md); here a request is one
`bisect` and two list updates in the event loop's thread, and the scrape, in the same thread,
turns them into the same `router_requests_total` and `router_request_duration_seconds` series.
"""

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RequestStats(Collector):
    """Per (region, outcome): a count per latency bucket (the last one is +Inf) and the sum."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = {}
        # GETs the fast path answered itself, and those it handed to the ASGI path.
        self.fast = {"answered": 0, "resumed": 0}

    def record(self, region: str, outcome: str, seconds: float) -> None:
        """Count one answered request."""
        key = (region, outcome)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0] * (len(BUCKETS) + 1)
            self._sums[key] = 0.0
        counts[bisect_left(BUCKETS, seconds)] += 1
        self._sums[key] += seconds

    def collect(self) -> Iterator[Metric]:
        """The series as Prometheus reads them."""
        requests = CounterMetricFamily(
            "router_requests", "Proxied requests", labels=["region", "outcome"]
        )
        latency = HistogramMetricFamily(
            "router_request_duration_seconds",
            "Proxied request latency, to the end of the response",
            labels=["region", "outcome"],
        )
        for key, counts in self._counts.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            requests.add_metric(list(key), cumulative)
            latency.add_metric(list(key), buckets, self._sums[key])
        yield requests
        yield latency
        fast = CounterMetricFamily(
            "router_fast_path_requests",
            "GETs begun on the fast path, by how they ended: answered, or resumed on the ASGI path",
            labels=["result"],
        )
        for result, count in self.fast.items():
            fast.add_metric([result], count)
        yield fast


STATS = RequestStats()
REGISTRY.register(STATS)
