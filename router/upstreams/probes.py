"""Active readiness probes of every endpoint's `/readyz`, run by a background task."""

import asyncio
import contextlib
import logging

from prometheus_client import Counter

from router.upstreams.pool import Endpoint, Health, RegionPool, Upstreams

log = logging.getLogger("router.probes")

PROBES = Counter("router_probes_total", "Readiness probes sent", ["region", "outcome"])


async def probe(
    endpoint: Endpoint,
    health: Health,
    *,
    probe_timeout: float,
    pool: RegionPool | None = None,
) -> bool:
    """Ask one endpoint's `/readyz` on a new connection and feed the answer to the health rules."""
    outcome = "failed"
    with contextlib.suppress(OSError):  # refused, reset, TLS refused, a bad answer
        try:
            async with asyncio.timeout(probe_timeout):
                answer = await endpoint.client.get("/readyz", fresh=True)
            outcome = "ok" if answer.status == 200 else "failed"
        except TimeoutError:
            outcome = "timeout"
    PROBES.labels(endpoint.region, outcome).inc()
    if outcome == "ok":
        health.probe_ok(endpoint)
    else:
        health.probe_failed(endpoint, pool, slow=outcome == "timeout")
    return outcome == "ok"


async def probe_all(upstreams: Upstreams, health: Health, *, probe_timeout: float) -> None:
    """Probe every endpoint (regions and global_api) once, in parallel."""
    endpoints = [*upstreams.all_endpoints(), *upstreams.global_pool.endpoints]
    await asyncio.gather(
        *(
            probe(e, health, probe_timeout=probe_timeout, pool=upstreams.pool_of(e))
            for e in endpoints
        )
    )


async def probe_forever(
    upstreams: Upstreams, health: Health, *, interval: float, probe_timeout: float
) -> None:
    """Background task: probe every endpoint every `interval` seconds."""
    while True:
        started = asyncio.get_running_loop().time()
        try:
            await probe_all(upstreams, health, probe_timeout=probe_timeout)
        except Exception:  # a probe bug must never stop health checking
            log.exception("probe round failed")
        elapsed = asyncio.get_running_loop().time() - started
        await asyncio.sleep(max(interval - elapsed, 0.0))
