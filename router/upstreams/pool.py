"""Regional endpoints, their health state and the choice of an endpoint for a request."""

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from common.line import WAIT_BUCKETS, WaitingLine
from router.config import RouterSettings
from router.upstreams import tls
from router.upstreams.http1 import Http1Pool
from schemas.directory import DirectoryMap

log = logging.getLogger("router.upstreams")

ENDPOINT_HEALTH = Gauge(
    "router_endpoint_healthy", "1 when the endpoint takes traffic", ["region", "endpoint"]
)
ENDPOINT_IN_FLIGHT = Gauge(
    "router_endpoint_in_flight",
    "Requests but payments sent to the endpoint and not yet answered (the in-flight cap counts"
    " these)",
    ["region", "endpoint"],
)
ENDPOINT_PAYMENTS = Gauge(
    "router_endpoint_payments_in_flight",
    "Payments sent to the endpoint and not yet answered (their own bound counts these)",
    ["region", "endpoint"],
)
ENDPOINT_CAPACITY = Gauge(
    "router_endpoint_capacity",
    "Requests the endpoint may have in flight: the per-pod cap times its pods",
    ["region", "endpoint"],
)
EJECTIONS = Counter(
    "router_endpoint_ejections_total", "Endpoints taken out of rotation", ["region", "reason"]
)
SLOW_PROBES_TOLERATED = Counter(
    "router_slow_probes_tolerated_total",
    "Timed-out probes that did not eject a region's last healthy endpoint",
    ["region"],
)
READMISSIONS = Counter(
    "router_endpoint_readmissions_total", "Endpoints put back into rotation", ["region"]
)

LINE_LENGTH = Gauge(
    "router_line_length",
    "Requests (payments included) waiting for a slot of the region",
    ["region"],
)
LINE_WAITS = Counter(
    "router_line_waits_total",
    "Requests that waited for a slot, by outcome (admitted, deadline, full, left: a join of a"
    " show read sold out meanwhile, answered by the router)",
    ["region", "outcome"],
)
LINE_WAIT_SECONDS = Histogram(
    "router_line_wait_seconds",
    "Time requests waited in the region's line before a slot or refusal",
    ["region"],
    buckets=WAIT_BUCKETS,
)

GLOBAL = "global"


@dataclass(eq=False)
class Endpoint:
    """One upstream base URL with its own connection pool and health counters."""

    region: str
    url: str
    client: Http1Pool
    healthy: bool = True
    probed: bool = False
    probe_successes: int = 0
    probe_failures: int = 0
    traffic_failures: int = 0
    # Requests in flight but payments: the replica's CPU work, which the in-flight cap bounds.
    in_flight: int = 0
    # Payments in flight: the replica parks them at the provider, so they have their own bound.
    paying: int = 0
    # Pods behind the URL (a region's Service or Ingress): the in-flight cap is per pod.
    pods: int = 1
    line: WaitingLine | None = None  # the region's line, woken when a slot comes free
    pay_line: WaitingLine | None = None  # the region's line of payments

    def count(self, payment: bool) -> int:
        """Payments in flight, or the other requests in flight."""
        return self.paying if payment else self.in_flight

    def full(self, cap: int, payment: bool = False) -> bool:
        """Whether `cap` requests (or payments) per pod are in flight (a cap of 0 is no cap)."""
        return bool(cap) and self.count(payment) >= cap * self.pods

    def take(self, payment: bool = False) -> None:
        """Count a request (or a payment) sent to this endpoint."""
        if payment:
            self.paying += 1
        else:
            self.in_flight += 1

    def release(self, payment: bool = False) -> None:
        """Count a request answered (or failed), and hand its slot to the first waiter of its kind."""
        if payment:
            self.paying -= 1
            line = self.pay_line
        else:
            self.in_flight -= 1
            line = self.line
        if line is not None and (line.lines[0] or line.lines[1]):
            line.wake()

    def mark(self, healthy: bool, reason: str) -> None:
        """Move the endpoint in or out of rotation, counting and logging the change."""
        if healthy == self.healthy:
            return
        self.healthy = healthy
        ENDPOINT_HEALTH.labels(self.region, self.url).set(1 if healthy else 0)
        if healthy:
            self.traffic_failures = 0
            READMISSIONS.labels(self.region).inc()
        else:
            self.probe_successes = 0
            EJECTIONS.labels(self.region, reason).inc()
        log.warning(
            "endpoint readmitted" if healthy else "endpoint ejected",
            extra={"fields": {"region": self.region, "endpoint": self.url, "reason": reason}},
        )


@dataclass(eq=False)
class RegionPool:
    """The endpoints of one region; picks the least-loaded healthy one, round robin on ties.

    When every healthy endpoint is at its cap, requests wait in the region's `line` (at most
    `max_waiting`; 0: refused at once); payments, which have a bound of their own, in
    `pay_line`, so that a freed slot of one kind never wakes a waiter of the other.
    """

    code: str
    endpoints: list[Endpoint] = field(default_factory=list)
    max_waiting: int = 0
    _turn: int = 0
    line: WaitingLine = field(init=False)
    pay_line: WaitingLine = field(init=False)

    def __post_init__(self) -> None:
        self.line = WaitingLine(max_waiting=self.max_waiting)
        self.pay_line = WaitingLine(max_waiting=self.max_waiting)
        LINE_LENGTH.labels(self.code).set_function(
            lambda: float(len(self.line) + len(self.pay_line))
        )
        self.adopt(self.endpoints)

    def adopt(self, endpoints: list[Endpoint]) -> None:
        """Serve with these endpoints; their freed slots wake this pool's lines."""
        for endpoint in endpoints:
            endpoint.line, endpoint.pay_line = self.line, self.pay_line
        self.endpoints = endpoints

    def line_of(self, payment: bool) -> WaitingLine:
        """The line a request of this kind waits in."""
        return self.pay_line if payment else self.line

    def healthy_count(self) -> int:
        """How many endpoints take traffic now."""
        return sum(1 for endpoint in self.endpoints if endpoint.healthy)

    def pick(
        self, exclude: list[Endpoint] | None = None, cap: int = 0, payment: bool = False
    ) -> Endpoint | None:
        """A healthy endpoint not in `exclude` with fewer than `cap` in flight (0: no cap).

        A `payment` counts (and is balanced on) payments in flight, any other request the rest.
        """
        endpoints = self.endpoints
        count = len(endpoints)
        if count == 1:
            only = endpoints[0]
            if not only.healthy or (exclude and only in exclude):
                return None
            return None if only.full(cap, payment) else only
        self._turn = turn = (self._turn + 1) % max(count, 1)
        best: Endpoint | None = None
        for offset in range(count):
            endpoint = endpoints[(turn + offset) % count]
            if not endpoint.healthy or (exclude and endpoint in exclude):
                continue
            if best is None or (
                endpoint.count(payment) * best.pods < best.count(payment) * endpoint.pods
            ):
                best = endpoint
        return None if best is None or best.full(cap, payment) else best

    def saturated(self, cap: int, payment: bool = False) -> bool:
        """Whether the pool has healthy endpoints and every one is at its cap (of payments)."""
        healthy = [endpoint for endpoint in self.endpoints if endpoint.healthy]
        return bool(healthy) and all(endpoint.full(cap, payment) for endpoint in healthy)


class Health:
    """Active (probe) and passive (live traffic) health rules: rise, fall, ejection."""

    def __init__(self, settings: RouterSettings) -> None:
        self.rise = settings.probe_rise
        self.fall = settings.probe_fall
        self.passive_fall = settings.passive_fall

    def probe_ok(self, endpoint: Endpoint) -> None:
        """Count a successful probe; readmit after `rise` in a row (or on the very first)."""
        endpoint.probe_failures = 0
        endpoint.probe_successes += 1
        first, endpoint.probed = not endpoint.probed, True
        if not endpoint.healthy and (first or endpoint.probe_successes >= self.rise):
            endpoint.mark(True, "probe")

    def probe_failed(
        self, endpoint: Endpoint, pool: "RegionPool | None" = None, *, slow: bool = False
    ) -> None:
        """Count a failed probe; eject after `fall` in a row (or on the very first).

        A probe that only timed out (`slow`) never ejects the pool's last healthy endpoint:
        under a rush a busy endpoint answers late, and ejecting it would turn overload into a
        whole-region outage. A dead process refuses connections and is ejected at once.
        """
        if slow and pool is not None and endpoint.healthy and pool.healthy_count() <= 1:
            SLOW_PROBES_TOLERATED.labels(endpoint.region).inc()
            return
        endpoint.probe_successes = 0
        endpoint.probe_failures += 1
        first, endpoint.probed = not endpoint.probed, True
        if endpoint.healthy and (first or endpoint.probe_failures >= self.fall):
            endpoint.mark(False, "probe")

    def traffic_ok(self, endpoint: Endpoint) -> None:
        """A live request got a non-5xx answer."""
        endpoint.traffic_failures = 0

    def traffic_failed(
        self, endpoint: Endpoint, pool: "RegionPool", *, reason: str, immediate: bool
    ) -> None:
        """A live request failed; a refused connection ejects at once, other failures after a streak.

        Timeouts (not `immediate`) never eject the pool's last healthy endpoint, as for probes.
        """
        endpoint.traffic_failures += 1
        if immediate or (
            endpoint.traffic_failures >= self.passive_fall and pool.healthy_count() > 1
        ):
            endpoint.mark(False, reason)

    def traffic_5xx(self, endpoint: Endpoint, pool: "RegionPool") -> None:
        """A live request got a 5xx; a streak ejects, but never the pool's last healthy endpoint."""
        endpoint.traffic_failures += 1
        # A 5xx proves the process is alive: with no spare, serving beats a certain 503.
        if endpoint.traffic_failures >= self.passive_fall and pool.healthy_count() > 1:
            endpoint.mark(False, "5xx")


class Upstreams:
    """Every region's pool, plus global_api, kept in step with the directory map."""

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings
        self.regions: dict[str, RegionPool] = {}
        self.global_pool = RegionPool(GLOBAL, max_waiting=settings.line_max_per_region)
        self._pods_task: asyncio.Task[None] | None = None
        self.tls = tls.client_context(settings)

    def _endpoint(self, region: str, url: str) -> Endpoint:
        settings = self.settings
        most = settings.endpoint_pods.get(url.rstrip("/"), 1)
        client = Http1Pool(
            url,
            limit=settings.upstream_connections * most,
            keepalive=settings.upstream_keepalive_seconds,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.attempt_timeout_seconds,
            tls=self.tls,
        )
        endpoint = Endpoint(region=region, url=url.rstrip("/"), client=client, pods=most)
        ENDPOINT_HEALTH.labels(region, endpoint.url).set(1)
        # Read at scrape time: the hot path only changes the plain counter.
        ENDPOINT_IN_FLIGHT.labels(region, endpoint.url).set_function(lambda: endpoint.in_flight)
        ENDPOINT_PAYMENTS.labels(region, endpoint.url).set_function(lambda: endpoint.paying)
        per_pod = settings.max_in_flight_per_endpoint
        ENDPOINT_CAPACITY.labels(region, endpoint.url).set_function(lambda: per_pod * endpoint.pods)
        return endpoint

    def start(self) -> None:
        """Create the global_api pool and start counting pods (inside the running event loop)."""
        self.global_pool.adopt([self._endpoint(GLOBAL, self.settings.global_api_url)])
        if self.settings.endpoint_pods_dns:
            self._pods_task = asyncio.create_task(self._count_pods_forever())

    async def count_pods(self) -> None:
        """Set each endpoint's pods to the ready pods of its headless Service, at most its most."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        for endpoint in self.all_endpoints():
            name = settings.endpoint_pods_dns.get(endpoint.url)
            if name is None:
                continue
            try:
                infos = await loop.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
            except OSError:
                continue  # a DNS hiccup is no news about capacity: keep the last count
            ready = len({info[4][0] for info in infos})
            endpoint.pods = max(1, min(ready, settings.endpoint_pods.get(endpoint.url, 1)))

    async def _count_pods_forever(self) -> None:
        while True:
            try:
                await self.count_pods()
            except Exception:  # a bug here must not stop the count for good
                log.exception("pod count failed")
            await asyncio.sleep(self.settings.probe_interval_seconds)

    async def sync(self, directory: DirectoryMap) -> None:
        """Add new regions and endpoints, drop the ones the map no longer lists."""
        wanted = {
            region.code: [u.rstrip("/") for u in region.endpoints] for region in directory.regions
        }
        retired: list[Endpoint] = []
        for code, urls in wanted.items():
            pool = self.regions.get(code)
            if pool is None:
                max_waiting = self.settings.line_max_per_region
                pool = self.regions[code] = RegionPool(code, max_waiting=max_waiting)
            known = {endpoint.url: endpoint for endpoint in pool.endpoints}
            pool.adopt(
                [known.pop(url) if url in known else self._endpoint(code, url) for url in urls]
            )
            retired.extend(known.values())
        for code in set(self.regions) - set(wanted):
            retired.extend(self.regions.pop(code).endpoints)
        for endpoint in retired:
            for gauge in (
                ENDPOINT_HEALTH,
                ENDPOINT_IN_FLIGHT,
                ENDPOINT_PAYMENTS,
                ENDPOINT_CAPACITY,
            ):
                with contextlib.suppress(KeyError):  # another app in this process may share it
                    gauge.remove(endpoint.region, endpoint.url)
            await endpoint.client.close()

    def pool_of(self, endpoint: Endpoint) -> RegionPool | None:
        """The pool an endpoint belongs to."""
        if endpoint.region == GLOBAL:
            return self.global_pool
        return self.regions.get(endpoint.region)

    def all_endpoints(self) -> list[Endpoint]:
        """Every regional endpoint (not global_api)."""
        return [endpoint for pool in self.regions.values() for endpoint in pool.endpoints]

    async def close(self) -> None:
        """Stop the pod count and close every connection pool."""
        if self._pods_task is not None:
            self._pods_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pods_task
        for endpoint in [*self.all_endpoints(), *self.global_pool.endpoints]:
            await endpoint.client.close()
