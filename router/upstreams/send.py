"""Send one request to a healthy endpoint of a pool, failing over with bounded retries."""

import asyncio
import random
import time
from dataclasses import dataclass

from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from common.line import LEFT, Listed
from router.config import RouterSettings
from router.upstreams.budget import RetryBudget
from router.upstreams.http1 import ConnectFailed, Headers, PoolBusy, Response
from router.upstreams.pool import LINE_WAIT_SECONDS, LINE_WAITS, Endpoint, Health, RegionPool

RETRIES = Counter("router_retries_total", "Requests sent again after a failure", ["region"])
FAILOVERS = Counter(
    "router_failovers_total", "Requests answered by another endpoint after a failure", ["region"]
)
OVERLOADED = Counter(
    "router_region_overloaded_total",
    "Requests refused because every healthy endpoint was at its in-flight cap and the line was"
    " full or their wait reached its deadline",
    ["region"],
)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NoHealthyEndpoint(Exception):
    """The pool has no endpoint in rotation (or every one has failed this request)."""

    def __init__(self, region: str) -> None:
        super().__init__(region)
        self.region = region


class RegionOverloaded(Exception):
    """Every healthy endpoint of the pool is at its in-flight cap: nothing was sent."""

    def __init__(self, region: str) -> None:
        super().__init__(region)
        self.region = region


class LeftLine(Exception):
    """The request was sent out of the region's line (`Outbound.listed`): nothing was sent."""

    def __init__(self, region: str) -> None:
        super().__init__(region)
        self.region = region


class _BudgetSpent(Exception):
    """The region's retry budget refused a retry (never leaves this module)."""


class UpstreamFailed(Exception):
    """The request could not be completed: `kind` is `timeout` or `connection`."""

    def __init__(self, region: str, kind: str) -> None:
        super().__init__(f"{region}: {kind}")
        self.region = region
        self.kind = kind


@dataclass(slots=True)
class Sent:
    """An upstream answer whose body is still to be read; call `done()` when finished."""

    response: Response
    endpoint: Endpoint
    payment: bool = False  # holds a slot of the endpoint's payments, not of its cap

    def done(self) -> None:
        """Release the connection and the endpoint's in-flight slot."""
        self.response.release()
        self.endpoint.release(self.payment)


def _never_sent(exc: BaseException) -> bool:
    # A failed connect means no byte of the request reached the upstream: safe for any method.
    return isinstance(exc, ConnectFailed)


def _is_transport_failure(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)


@dataclass(slots=True)
class Outbound:
    """One request to send upstream, and whether it may be sent more than once."""

    method: str
    path: str
    headers: Headers
    body: bytes | None
    repeatable: bool
    deadline: float  # time.monotonic() by which the answer's headers must have arrived
    priority: bool = False  # finishes a sale: first in the region's line (common.priority)
    payment: bool = False  # counted in the payments' bound, not the cap (common.priority.pays)
    timeouts: int = 0
    # Its waiter while it waits in the region's line, sent away together (router.proxy.soldout).
    listed: Listed | None = None

    def may_retry(self, exc: BaseException) -> bool:
        """Whether a failed attempt may be repeated on another endpoint."""
        if _never_sent(exc):
            return True
        if not (self.repeatable and _is_transport_failure(exc)):
            return False
        if isinstance(exc, TimeoutError) and self.method not in _SAFE_METHODS:
            # A keyed write that timed out is likely still running on a slow upstream:
            # one more try is enough, more only piles work on a region already behind.
            self.timeouts += 1
            return self.timeouts <= 1
        return True


class Sender:
    """Sends requests for every pool with one set of timeouts, retry rules and health rules."""

    def __init__(self, settings: RouterSettings, health: Health) -> None:
        self.settings = settings
        self.health = health
        # The two together never exceed the connection limit (RouterSettings checks it), so a
        # request under its cap never queues for a connection (PoolBusy).
        self.cap = settings.max_in_flight_per_endpoint
        self.payment_cap = settings.max_payments_in_flight_per_endpoint
        self.budgets: dict[str, RetryBudget] = {}

    def budget(self, region: str) -> RetryBudget:
        """The retry budget of a region, created on first use."""
        budget = self.budgets.get(region)
        if budget is None:
            settings = self.settings
            budget = self.budgets[region] = RetryBudget(
                region,
                ratio=settings.retry_ratio,
                floor=settings.retry_floor,
                window=settings.retry_window_seconds,
            )
        return budget

    async def _pick(
        self, pool: RegionPool, request: Outbound, tried: list[Endpoint] | None = None
    ) -> Endpoint:
        """A healthy endpoint with a free slot, after waiting in the region's line if need be."""
        payment = request.payment
        cap = self.payment_cap if payment else self.cap
        line, woken, started = pool.line_of(payment), False, 0.0
        while True:
            if woken or not line.ahead_of(request.priority):
                endpoint = pool.pick(tried, cap, payment)
                if endpoint is None and tried:
                    endpoint = pool.pick(cap=cap, payment=payment)
                if endpoint is not None:
                    if woken:
                        _waited(pool.code, "admitted", started)
                    return endpoint
                if not pool.saturated(cap, payment):
                    raise NoHealthyEndpoint(pool.code)
            if not started:
                started = time.monotonic()
            limit = min(started + self.settings.line_timeout_seconds, request.deadline)
            refused = await line.wait(
                request.priority, limit - time.monotonic(), front=woken, listed=request.listed
            )
            if refused == LEFT:
                _waited(pool.code, refused, started)
                raise LeftLine(pool.code)
            if refused is not None:
                _waited(pool.code, refused, started)
                OVERLOADED.labels(pool.code).inc()
                raise RegionOverloaded(pool.code)
            woken = True

    async def send(self, pool: RegionPool, request: Outbound) -> Sent:
        """Send to a healthy endpoint; on a transport failure retry elsewhere if safe to repeat."""
        endpoint = await self._pick(pool, request)
        self.budget(pool.code).request()
        try:
            return await self._attempt(pool, endpoint, request)
        except Exception as exc:
            return await self.send_again(pool, request, endpoint, exc)

    async def send_again(
        self, pool: RegionPool, request: Outbound, failed: Endpoint, error: Exception
    ) -> Sent:
        """After a first attempt on `failed` ended in `error`: retry elsewhere if safe, else raise."""
        if not request.may_retry(error):
            raise as_failure(pool.code, error) from error
        return await self.retry(pool, request, failed, error)

    async def retry(
        self, pool: RegionPool, request: Outbound, failed: Endpoint, error: Exception
    ) -> Sent:
        """Send again, elsewhere if possible, a request whose `may_retry(error)` said yes."""
        return await self._retry(pool, [failed], error, request)

    def answered(self, endpoint: Endpoint, pool: RegionPool, status: int) -> None:
        """Count an attempt's answer toward the endpoint's health."""
        if status >= 500:
            self.health.traffic_5xx(endpoint, pool)
        else:
            self.health.traffic_ok(endpoint)

    def attempt_failed(
        self, endpoint: Endpoint, pool: RegionPool, exc: BaseException, *, payment: bool
    ) -> None:
        """Free the attempt's in-flight slot and count a transport failure against the endpoint."""
        endpoint.release(payment)
        if _is_transport_failure(exc) and not isinstance(exc, PoolBusy):
            self.health.traffic_failed(
                endpoint, pool, reason="connection", immediate=_never_sent(exc)
            )

    def _retrying(self, pool: RegionPool, request: Outbound, remaining: float) -> AsyncRetrying:
        settings = self.settings
        return AsyncRetrying(
            stop=stop_after_attempt(settings.retry_budget) | stop_before_delay(remaining),
            wait=wait_random_exponential(
                multiplier=settings.retry_backoff_seconds, max=settings.retry_backoff_max_seconds
            ),
            retry=retry_if_exception(request.may_retry),
            reraise=True,
        )

    async def _retry(
        self, pool: RegionPool, tried: list[Endpoint], error: BaseException, request: Outbound
    ) -> Sent:
        remaining = request.deadline - time.monotonic()
        budget = self.budget(pool.code)
        if self.settings.retry_budget == 0 or remaining <= 0 or not budget.try_retry():
            raise as_failure(pool.code, error)
        errors = [error]
        # Tenacity spaces the retries; the first one also waits a jittered moment.
        await asyncio.sleep(random.uniform(0, self.settings.retry_backoff_seconds))
        try:
            async for attempt in self._retrying(pool, request, remaining):
                with attempt:
                    if len(tried) > 1 and not budget.try_retry():
                        raise _BudgetSpent
                    RETRIES.labels(pool.code).inc()
                    endpoint = await self._pick(pool, request, tried)
                    tried.append(endpoint)
                    try:
                        sent = await self._attempt(pool, endpoint, request)
                    except Exception as exc:
                        errors.append(exc)
                        raise
                    if endpoint is not tried[0]:
                        FAILOVERS.labels(pool.code).inc()
                    return sent
        except (NoHealthyEndpoint, RegionOverloaded, LeftLine):
            raise
        except _BudgetSpent:
            raise as_failure(pool.code, errors[-1]) from None
        except Exception as exc:
            raise as_failure(pool.code, exc) from exc
        raise as_failure(pool.code, error)  # pragma: no cover - tenacity always reraises

    async def _attempt(self, pool: RegionPool, endpoint: Endpoint, request: Outbound) -> Sent:
        timeout = min(self.settings.attempt_timeout_seconds, request.deadline - time.monotonic())
        if timeout <= 0:
            raise TimeoutError("request deadline passed")
        endpoint.take(request.payment)
        try:
            response = await endpoint.client.request(
                request.method, request.path, request.headers, request.body, wait=timeout
            )
        except BaseException as exc:
            self.attempt_failed(endpoint, pool, exc, payment=request.payment)
            raise
        self.answered(endpoint, pool, response.status)
        return Sent(response, endpoint, request.payment)


def _waited(region: str, outcome: str, started: float) -> None:
    LINE_WAITS.labels(region, outcome).inc()
    LINE_WAIT_SECONDS.labels(region).observe(time.monotonic() - started)


def as_failure(region: str, exc: BaseException) -> BaseException:
    """What a request that ended in `exc` is answered for (`UpstreamFailed` for transport errors)."""
    if isinstance(exc, NoHealthyEndpoint | UpstreamFailed | RegionOverloaded):
        return exc
    if isinstance(exc, PoolBusy):
        return RegionOverloaded(region)
    if isinstance(exc, TimeoutError):
        return UpstreamFailed(region, "timeout")
    if isinstance(exc, OSError):
        return UpstreamFailed(region, "connection")
    return exc
