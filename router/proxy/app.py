"""The proxy hot path as a raw ASGI app: resolve, limit, forward, stream the answer back."""

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from prometheus_client import Counter
from starlette.types import Receive, Scope, Send

from common.auth import TokenVerifier
from common.errors import AppError, ServiceUnavailable
from common.line import Listed
from common.observability import request_id_var
from common.priority import finishes_sale, pays
from router.config import RouterSettings
from router.directory.cache import DirectoryCache
from router.proxy.accesslog import AccessLog
from router.proxy.clients import TrustedProxies
from router.proxy.headers import Inbound, read_request_headers, response_headers
from router.proxy.resolve import Route, RouteNotFound, resolve
from router.proxy.soldout import ANSWERED, SoldOut, line_show
from router.proxy.stats import STATS
from router.proxy.watch import Watches
from router.ratelimit.buckets import TokenBuckets, retry_after_seconds
from router.upstreams.pool import GLOBAL, Endpoint, RegionPool, Upstreams
from router.upstreams.send import (
    LeftLine,
    NoHealthyEndpoint,
    Outbound,
    RegionOverloaded,
    Sender,
    Sent,
    UpstreamFailed,
)

log = logging.getLogger("router.proxy")

UNAVAILABLE = Counter(
    "router_region_unavailable_total", "503s for want of a healthy endpoint", ["region"]
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SMALL_BODY = 256 * 1024
HOLD_SUFFIXES = ("/holds", "/best-available")


RESUME = "router.resume"  # scope key: a request the fast path began (router.proxy.fastpath)
CLIENT_GONE = "router.client_gone"  # scope key: the client hung up (router.proxy.bounds)


@dataclass(slots=True, kw_only=True)
class Resume:
    """A request the fast path hands over: its answer, an attempt to repeat, or (no endpoint) none."""

    started: float  # time.perf_counter() when the request arrived
    route: Route
    inbound: Inbound
    outbound: Outbound  # with its body and deadline; the rate limit has been applied
    endpoint: Endpoint | None = None
    sent: Sent | None = None
    error: Exception | None = None


class ProxyError(Exception):
    """An answer the router gives itself, as the `schemas` error body."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.body = {"error": code, "detail": detail, **extra}
        self.headers = headers or {}

    @classmethod
    def of(cls, error: AppError) -> "ProxyError":
        """The router's answer for an application error."""
        return cls(error.status, error.code, error.detail, error.headers, **error.extra)


class ProxyApp:
    """Forwards every request that is not the router's own to global_api or a region."""

    def __init__(
        self,
        *,
        settings: RouterSettings,
        directory: DirectoryCache,
        upstreams: Upstreams,
        sender: Sender,
        trusted: TrustedProxies,
        access_log: AccessLog | None = None,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.settings = settings
        self.trusted = trusted
        self.access_log = access_log
        self.directory = directory
        self.upstreams = upstreams
        self.sender = sender
        self.watches = Watches(settings, self)  # held watches of a line (router.proxy.watch)
        self.sold_out = SoldOut(verifier)  # shows the watch read sold out (router.proxy.soldout)
        self.login_limit = TokenBuckets(
            "login",
            rate=settings.login_rate_per_second,
            burst=settings.login_burst,
            max_clients=settings.rate_limit_max_clients,
        )
        self.hold_limit = TokenBuckets(
            "holds",
            rate=settings.hold_rate_per_second,
            burst=settings.hold_burst,
            max_clients=settings.rate_limit_max_clients,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        resume: Resume | None = scope.get(RESUME)
        started = resume.started if resume else time.perf_counter()
        peer = scope.get("client")
        inbound = (
            resume.inbound
            if resume
            else read_request_headers(
                scope["headers"],
                client=peer[0] if peer else None,
                scheme=scope.get("scheme", "http"),
                trusted=self.trusted,
            )
        )
        token = request_id_var.set(inbound.request_id)
        region, status, outcome = "-", 500, "error"
        try:
            route = resume.route if resume else await self._route(scope)
            region = route.region or GLOBAL
            if not resume and await self.watches.serve(scope, receive, send, route):
                status, outcome = 200, "watch"  # held here, not proxied (router.proxy.watch)
                return
            body = None  # a resumed GET has none
            if not resume:
                self.limit(scope["method"], route, inbound.client)
                body = await self._body(inbound, receive)
            status, outcome = await self._answer(scope, route, inbound, body, send)
        except ProxyError as exc:
            status, outcome = exc.status, str(exc.body["error"])
            await _send_json(send, exc.status, exc.body, exc.headers, inbound.request_id)
        except Exception:
            log.exception("proxy failure")
            status, outcome = 500, "internal"
            with contextlib.suppress(Exception):  # the response may have started already
                internal = {"error": "internal", "detail": "internal error"}
                await _send_json(send, 500, internal, {}, inbound.request_id)
        finally:
            if scope.get(CLIENT_GONE):
                outcome = "client_gone"  # whatever the status, nobody received it
            self.observe(
                scope["method"],
                scope["path"],
                inbound.request_id,
                region,
                (outcome, status),
                started,
            )
            request_id_var.reset(token)

    async def _route(self, scope: Scope) -> Route:
        path: str = scope["path"]
        raw = scope.get("raw_path")
        raw_path = raw.decode("latin-1") if raw else path
        query: bytes = scope.get("query_string", b"")
        if query:
            raw_path = f"{raw_path}?{query.decode('latin-1')}"
        regions = self.upstreams.regions
        try:
            return resolve(
                path, raw_path, regions=regions, cinema_regions=self.directory.cinema_regions
            )
        except RouteNotFound as exc:
            if not exc.cinema_miss:
                raise ProxyError(404, "not_found", exc.detail) from None
        await self.directory.refresh_on_miss()
        try:
            return resolve(
                path, raw_path, regions=regions, cinema_regions=self.directory.cinema_regions
            )
        except RouteNotFound as exc:
            raise ProxyError(404, "not_found", exc.detail) from None

    def limit(self, method: str, route: Route, client: str | None) -> None:
        """Spend the client's token for a login or a hold; raise the 429 when there is none."""
        if method != "POST" or not self.settings.rate_limit_enabled or client is None:
            return
        # Decoded as the upstream will decode it: `/h%6Flds` is a hold too.
        path = unquote(route.path.split("?", 1)[0])
        if route.region is None and path == "/auth/login":
            buckets = self.login_limit
        elif (
            route.region is not None and path.startswith("/shows/") and path.endswith(HOLD_SUFFIXES)
        ):
            buckets = self.hold_limit
        else:
            return
        wait = buckets.take(client)
        if wait > 0:
            seconds = retry_after_seconds(wait)
            raise ProxyError(
                429,
                "rate_limited",
                "too many requests, slow down",
                {"Retry-After": str(seconds)},
                retry_after=seconds,
            )

    async def _body(self, inbound: Inbound, receive: Receive) -> bytes | None:
        limit = self.settings.max_body_bytes
        if inbound.bad_length:
            raise ProxyError(400, "bad_request", "malformed Content-Length")
        if inbound.content_length is not None and inbound.content_length > limit:
            raise _too_large(limit)
        if not inbound.content_length and not inbound.chunked:
            return None
        # Buffered (bounded by the limit) so a safe retry can replay it on another endpoint.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ProxyError(400, "bad_request", "client went away")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks) if len(chunks) != 1 else chunks[0]

    async def _answer(
        self, scope: Scope, route: Route, inbound: Inbound, body: bytes | None, send: Send
    ) -> tuple[int, str]:
        """The upstream's answer relayed, or the region's for a join of a show read sold out."""
        lines, show_id, region = self.sold_out, line_show(scope["method"], route), route.region
        known = listed = None
        if show_id is not None and region is not None and lines.can_verify():
            known = lines.known(region, show_id)
            listed = None if known is not None else lines.waiting(region, show_id)
        try:
            if known is None:
                status = await self._forward(scope, route, inbound, body, send, listed)
                return status, "ok" if status < 500 else "upstream_5xx"
        except LeftLine:  # read sold out while it waited for a slot: it was never sent
            known = lines.known(region, show_id)  # type: ignore[arg-type]  # a join's
        if known is None:  # forgotten in between (a re-opened on-sale): the region answers
            status = await self._forward(scope, route, inbound, body, send)
            return status, "ok" if status < 500 else "upstream_5xx"
        try:
            await lines.verify(scope["headers"])
        except AppError as refused:
            ANSWERED.labels("unauthorized").inc()
            raise ProxyError.of(refused) from None
        ANSWERED.labels("sold_out").inc()
        await _send_json(send, 200, known, {}, inbound.request_id)
        return 200, "sold_out"

    async def _forward(
        self,
        scope: Scope,
        route: Route,
        inbound: Inbound,
        body: bytes | None,
        send: Send,
        listed: Listed | None = None,
    ) -> int:
        pool = self.pool(route)
        if pool is None:
            raise ProxyError(404, "not_found", f"unknown region {route.region!r}")
        resume: Resume | None = scope.get(RESUME)
        # A resumed request comes with its own, body included (a POST's; a GET has none).
        outbound = (
            resume.outbound
            if resume
            else self.outbound(scope, route, inbound, body, self.deadline())
        )
        outbound.listed = listed  # a join leaves the region's line when its show is read sold out
        try:
            if resume is None or resume.endpoint is None:
                sent = await self.sender.send(pool, outbound)
            elif resume.sent is not None:
                sent = resume.sent
            else:
                assert resume.error is not None  # the fast path asked `may_retry` already
                sent = await self.sender.retry(pool, outbound, resume.endpoint, resume.error)
        except NoHealthyEndpoint as exc:
            raise self._unavailable(exc.region) from None
        except RegionOverloaded as exc:
            raise _overloaded(exc.region) from None
        except UpstreamFailed as exc:
            raise upstream_failed(exc) from None
        return await _relay(sent, scope, inbound.request_id, send)

    @staticmethod
    def outbound(
        scope: Scope, route: Route, inbound: Inbound, body: bytes | None, deadline: float
    ) -> Outbound:
        """The request to send upstream for `scope`, and whether it may be sent twice."""
        method: str = scope["method"]
        return Outbound(
            method=method,
            path=route.path,
            headers=inbound.forward,
            body=body,
            repeatable=method in SAFE_METHODS or inbound.idempotency_key,
            deadline=deadline,
            priority=finishes_sale(method, scope["path"], scope["headers"]),
            payment=pays(method, scope["path"]),
        )

    def pool(self, route: Route) -> RegionPool | None:
        """The endpoints that serve a route (None once its region has left the map)."""
        if route.region is None:
            return self.upstreams.global_pool
        return self.upstreams.regions.get(route.region)

    def deadline(self) -> float:
        """The `time.monotonic()` by which a request starting now must have its answer's headers."""
        return time.monotonic() + self.settings.request_deadline_seconds

    def _unavailable(self, region: str) -> ProxyError:
        UNAVAILABLE.labels(region).inc()
        retry_after = {"Retry-After": str(self.settings.unavailable_retry_after_seconds)}
        if region == GLOBAL:
            return ProxyError(
                503,
                "upstream_unavailable",
                "global_api is unreachable",
                retry_after,
                service="global_api",
            )
        return ProxyError(
            503,
            "region_unavailable",
            f"no healthy endpoint in region {region}",
            retry_after,
            region=region,
        )

    def observe(
        self,
        method: str,
        path: str,
        request_id: str,
        region: str,
        result: tuple[str, int],
        started: float,
    ) -> None:
        """Count and time one answered request; log it if the access log is on or it failed."""
        outcome, status = result
        elapsed = time.perf_counter() - started
        STATS.record(region, outcome, elapsed)
        if self.access_log is None and status < 500:
            return
        fields = {
            "method": method,
            "path": path,
            "region": region,
            "status": status,
            "outcome": outcome,
            "ms": round(elapsed * 1000, 2),
        }
        if self.access_log is not None:
            self.access_log.record(request_id, fields)
        else:
            log.warning("proxied", extra={"fields": fields})


async def _relay(sent: Sent, scope: Scope, request_id: str, send: Send) -> int:
    """Stream the upstream answer to the client; small bodies go in one message."""
    response = sent.response
    headers = response_headers(response.raw_headers, request_id)
    status = response.status
    length = response.content_length
    method = scope["method"]
    if method == "HEAD" or status in (204, 304) or (length is not None and length <= SMALL_BODY):
        try:
            data = b"" if method == "HEAD" else await response.read()
        except (ConnectionError, TimeoutError) as exc:
            raise ProxyError(502, "upstream_failed", "the upstream answer was cut short") from exc
        finally:
            sent.done()  # the answer is in hand: a slow reader must not hold the endpoint's slot
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        return status
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        async for chunk in response.chunks():
            if scope.get(CLIENT_GONE):
                return status  # cut off (router.proxy.bounds): stop reading for nobody
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except (ConnectionError, TimeoutError) as exc:
        # Too late for an error status: ending without the last chunk tells the client.
        log.warning("upstream body cut short", extra={"fields": {"error": type(exc).__name__}})
        return 502
    finally:
        sent.done()
    await send({"type": "http.response.body", "body": b""})
    return status


def _overloaded(region: str) -> ProxyError:
    # Queueing behind a full region only lengthens the rush; a prompt 503 lets clients back off.
    return ProxyError.of(
        ServiceUnavailable(
            f"region {region} is at capacity, retry shortly",
            code="region_overloaded",
            headers={"Retry-After": "1"},
            region=region,
            retry_after=1,
        )
    )


def _too_large(limit: int) -> ProxyError:
    return ProxyError(413, "payload_too_large", f"request body over {limit} bytes", max_bytes=limit)


def upstream_failed(exc: UpstreamFailed) -> ProxyError:
    """The answer to a request that reached no upstream answer: 504 on a timeout, else 502."""
    if exc.kind == "timeout":
        return ProxyError(
            504,
            "upstream_timeout",
            f"region {exc.region} did not answer in time",
            region=exc.region,
        )
    return ProxyError(
        502, "upstream_failed", f"region {exc.region} dropped the request", region=exc.region
    )


def json_answer(
    body: dict[str, Any] | bytes, headers: dict[str, str], request_id: str
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and payload of an answer the router gives itself (`body` JSON or encoded)."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode("latin-1")),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    return raw, payload


async def _send_json(
    send: Send, status: int, body: dict[str, Any] | bytes, headers: dict[str, str], request_id: str
) -> None:
    raw, payload = json_answer(body, headers, request_id)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
