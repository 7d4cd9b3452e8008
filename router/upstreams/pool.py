"""Regional endpoints, their health state and the choice of an endpoint for a request."""

import contextlib
import logging
from dataclasses import dataclass, field

import aiohttp
from prometheus_client import Counter, Gauge

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
    "Requests sent to the endpoint and not yet answered (the in-flight cap counts these)",
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
    in_flight: int = 0

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
    """The endpoints of one region; picks the least-loaded healthy one, round robin on ties."""

    code: str
    endpoints: list[Endpoint] = field(default_factory=list)
    _turn: int = 0

    def healthy_count(self) -> int:
        """How many endpoints take traffic now."""
        return sum(1 for endpoint in self.endpoints if endpoint.healthy)

    def pick(self, exclude: list[Endpoint] | None = None, cap: int = 0) -> Endpoint | None:
        """A healthy endpoint not in `exclude` with fewer than `cap` in flight (0: no cap)."""
        endpoints = self.endpoints
        count = len(endpoints)
        if count == 1:
            only = endpoints[0]
            if not only.healthy or (exclude and only in exclude):
                return None
            return None if cap and only.in_flight >= cap else only
        self._turn = turn = (self._turn + 1) % max(count, 1)
        best: Endpoint | None = None
        for offset in range(count):
            endpoint = endpoints[(turn + offset) % count]
            if not endpoint.healthy or (exclude and endpoint in exclude):
                continue
            if best is None or endpoint.in_flight < best.in_flight:
                best = endpoint
        return None if best is None or (cap and best.in_flight >= cap) else best

    def saturated(self, cap: int) -> bool:
        """Whether the pool has healthy endpoints and every one is at its in-flight cap."""
        healthy = [endpoint for endpoint in self.endpoints if endpoint.healthy]
        return bool(healthy) and all(endpoint.in_flight >= cap for endpoint in healthy)


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
        self.global_pool = RegionPool(GLOBAL)
        self.probe_session: aiohttp.ClientSession | None = None
        self.tls = tls.client_context(settings)

    def _endpoint(self, region: str, url: str) -> Endpoint:
        settings = self.settings
        client = Http1Pool(
            url,
            limit=settings.upstream_connections,
            keepalive=settings.upstream_keepalive_seconds,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.attempt_timeout_seconds,
            tls=self.tls,
        )
        endpoint = Endpoint(region=region, url=url.rstrip("/"), client=client)
        ENDPOINT_HEALTH.labels(region, endpoint.url).set(1)
        # Read at scrape time: the hot path only changes the plain counter.
        ENDPOINT_IN_FLIGHT.labels(region, endpoint.url).set_function(lambda: endpoint.in_flight)
        return endpoint

    def start(self) -> None:
        """Create the global_api pool and the probes' session (inside the running event loop)."""
        self.global_pool.endpoints = [self._endpoint(GLOBAL, self.settings.global_api_url)]
        # Probes open connections of their own: a probe proves a fresh connect works.
        self.probe_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, force_close=True, ssl=self.tls),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def sync(self, directory: DirectoryMap) -> None:
        """Add new regions and endpoints, drop the ones the map no longer lists."""
        wanted = {
            region.code: [u.rstrip("/") for u in region.endpoints] for region in directory.regions
        }
        retired: list[Endpoint] = []
        for code, urls in wanted.items():
            pool = self.regions.setdefault(code, RegionPool(code))
            known = {endpoint.url: endpoint for endpoint in pool.endpoints}
            pool.endpoints = [
                known.pop(url) if url in known else self._endpoint(code, url) for url in urls
            ]
            retired.extend(known.values())
        for code in set(self.regions) - set(wanted):
            retired.extend(self.regions.pop(code).endpoints)
        for endpoint in retired:
            for gauge in (ENDPOINT_HEALTH, ENDPOINT_IN_FLIGHT):
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
        """Close every connection pool."""
        for endpoint in [*self.all_endpoints(), *self.global_pool.endpoints]:
            await endpoint.client.close()
