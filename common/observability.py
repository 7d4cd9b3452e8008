"""Structured JSON logs, request ids, Prometheus request metrics, /healthz, /readyz, /metrics.

Also an optional cap on requests in flight per process (`AdmissionControl`): each request the
app is working on holds its coroutine, parsed body, models and database session (tens of kB),
so a flood of simultaneous clients is what drives a worker's peak memory, not its traffic.
"""

import asyncio
import contextvars
import itertools
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.line import WAIT_BUCKETS, WaitingLine
from schemas.errors import error_body

REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

HTTP_IN_FLIGHT = Gauge("http_requests_in_flight", "Requests admitted and not answered", ["service"])
HTTP_QUEUED = Gauge("http_requests_queued", "Requests waiting for admission", ["service"])
HTTP_SHED = Counter(
    "http_requests_shed_total", "Requests answered 503 overloaded", ["service", "reason"]
)
HTTP_QUEUE_WAIT = Histogram(
    "http_request_queue_wait_seconds",
    "Time requests waited for admission (admitted or shed)",
    ["service"],
    buckets=WAIT_BUCKETS,
)
_SHED_REASONS = {"full": "queue_full", "deadline": "queue_timeout"}

ReadinessCheck = Callable[[], Awaitable[None]]


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry)


_encode = json.JSONEncoder(default=str).encode  # `json.dumps(default=...)` builds one per call


def log_fields(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """Log `msg` with structured `fields` at INFO, without `Logger.info`'s caller lookup."""
    # `info` walks the stack for the caller's file and line (`findCaller`), which the JSON
    # lines never show: a third of an access line's CPU (docs/benchmarks/floor.md, payfloor).
    if logger.isEnabledFor(logging.INFO):
        record = logger.makeRecord(
            logger.name, logging.INFO, _NO_FILE, 0, msg, (), None, extra={"fields": fields}
        )
        logger.handle(record)


_NO_FILE = "(unknown file)"  # what `Logger.info` records when it cannot find the caller


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # The JSON lines show none of these; each record would look them up (logging HOWTO,
    # "Optimization").
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def _route_template(app: ASGIApp, scope: Scope) -> str:
    matched = scope.get("route")  # set by the router on a match: no second matching pass
    if (path := getattr(matched, "path", None)) is not None:
        return str(path)
    # FastAPI keeps included routers as lazy wrappers without a `path`: flatten them, or the
    # label would be the raw path (one time series per resource id).
    for route in iter_route_contexts(list(getattr(app, "routes", ()))):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", scope["path"]))
    return "<unmatched>"


@dataclass(frozen=True)
class AccessLog:
    """Which answered requests get an INFO `request` line.

    Errors (5xx) and requests slower than `slow_ms` always; of the others one in `sample_every`
    (1: every request, 0: none), each carrying `sampled: N` so counts can be scaled back. Request
    counts and latencies are in the metrics, whatever is logged: a line per request cost about
    as much CPU as the rest of the middleware (docs/benchmarks/floor.md).
    """

    sample_every: int = 100
    slow_ms: float = 500.0


_REQUEST_ID = REQUEST_ID_HEADER.encode()
_ID_PREFIX = uuid.uuid4().hex[:16]  # per process; a counter makes the rest of each new id
_ids = itertools.count(1)


def new_request_id() -> str:
    """A request id unique across processes (random prefix, counter), cheaper than a uuid4."""
    return f"{_ID_PREFIX}{next(_ids):016x}"


class ObservabilityMiddleware:
    """Pure ASGI middleware: request id in and out, access log, request metrics by route.

    Per request it allocates only the response hook and the id header; the metric children of
    each (method, route, status) are looked up once and kept.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        router_app: ASGIApp | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.service = service
        self.router_app = router_app
        self.log = logging.getLogger("access")
        self.policy = access_log or AccessLog()
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._unlogged = 0  # answers since the last sampled line

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, _REQUEST_ID) or new_request_id()
        token = request_id_var.set(request_id)
        id_header = (_REQUEST_ID, request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        """Count and time one answer; log it if the access-log policy wants it."""
        route = _route_template(self.router_app or self.app, scope)
        method = scope["method"]
        series = self._series.get((method, route, status))
        if series is None:  # bounded: route templates x methods x statuses
            series = self._series[method, route, status] = (
                HTTP_REQUESTS.labels(self.service, method, route, str(status)),
                HTTP_LATENCY.labels(self.service, method, route),
            )
        series[0].inc()
        series[1].observe(elapsed)
        ms = elapsed * 1000
        if status >= 500 or ms >= self.policy.slow_ms:
            self._log(scope, route, status, ms, {})
        elif route not in _QUIET_ROUTES and self._sample():
            self._log(scope, route, status, ms, {"sampled": self.policy.sample_every})

    def _log(self, scope: Scope, route: str, status: int, ms: float, more: dict[str, int]) -> None:
        fields = {"method": scope["method"], "path": scope["path"], "route": route}
        fields |= {"status": status, "ms": round(ms, 2), **more}
        log_fields(self.log, "request", fields)

    def _sample(self) -> bool:
        """Whether this ordinary answer is the one in `sample_every` that gets logged."""
        every = self.policy.sample_every
        if every < 1:
            return False
        self._unlogged += 1
        if self._unlogged < every:
            return False
        self._unlogged = 0
        return True


_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(frozen=True)
class Admission:
    """Limits of `AdmissionControl`: requests in the app, requests waiting, and for how long.

    `prioritized(method, path, headers)` picks the requests that wait in a line of their own, served
    before the others whenever a slot comes free.
    """

    max_in_flight: int
    max_queued: int
    queue_timeout: float
    prioritized: Callable[[str, str, Iterable[tuple[bytes, bytes]]], bool] | None = None


class AdmissionControl:
    """Pure ASGI middleware: at most `max_in_flight` requests in the app, the rest wait.

    Waiting requests stand in two FIFO lines, prioritized requests first; each line holds at
    most `max_queued`, each request waits at most `queue_timeout` seconds. Any other request is
    answered at once with 503 `overloaded`, the standard error body and `Retry-After`, before
    its body is read. A waiting request costs little memory (its connection and ASGI scope);
    one in the app costs tens of kB. /healthz, /readyz and /metrics are never queued, so
    probes see the process as it is, not behind the queue.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_in_flight: int,
        max_queued: int,
        queue_timeout: float,
        prioritized: Callable[[str, str, Iterable[tuple[bytes, bytes]]], bool] | None = None,
        retry_after: int = 1,
    ) -> None:
        if max_in_flight < 1 or max_queued < 0 or queue_timeout <= 0:
            raise ValueError("max_in_flight >= 1, max_queued >= 0 and queue_timeout > 0")
        self.app = app
        self.service = service
        self.max_queued = max_queued
        self.queue_timeout = queue_timeout
        self.prioritized = prioritized
        self.retry_after = retry_after
        self.free = max_in_flight
        self.line = WaitingLine(max_waiting=max_queued, unclaimed=self._unclaimed)
        self.in_flight = HTTP_IN_FLIGHT.labels(service)
        HTTP_QUEUED.labels(service).set_function(lambda: float(len(self.line)))
        self.waited = HTTP_QUEUE_WAIT.labels(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _QUIET_ROUTES:
            await self.app(scope, receive, send)
            return
        if self.free > 0 and not self.line.ahead_of(False):
            self.free -= 1
        else:
            first = self.prioritized is not None and self.prioritized(
                scope["method"], scope["path"], scope["headers"]
            )
            started = time.perf_counter()
            refused = await self.line.wait(first, self.queue_timeout)
            self.waited.observe(time.perf_counter() - started)
            if refused:
                await self._shed(scope, receive, send, _SHED_REASONS[refused])
                return
        self.in_flight.inc()
        scope[_ADMISSION_KEY] = self
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.dec()
            self.line.hand_on()

    def _unclaimed(self) -> None:
        self.free += 1

    @asynccontextmanager
    async def stepped_aside(self) -> AsyncIterator[None]:
        """Lend the request's slot to the next in line while it waits on another system.

        Back, it takes a slot again at the front of the priority line, never refused: what it
        started must finish (past the cap if no slot came within `queue_timeout`). A hang-up while it waits keeps the books even: the slot it was
        about to get is passed on, and it counts as in flight (over the cap) until it ends.
        """
        self.in_flight.dec()
        self.line.hand_on()
        try:
            yield
        finally:
            try:
                await self._take_back()
            except asyncio.CancelledError:
                self.free -= 1
                raise
            finally:
                self.in_flight.inc()

    async def _take_back(self) -> None:
        """A slot again for a request that stepped aside: first in line, and past the cap once
        `queue_timeout` has gone by (given back when it ends), rather than never."""
        free_now = self.free > 0 and not self.line.ahead_of(True)
        # Woken (None), the waiter was handed a slot; else it takes a free one, or one past the cap.
        if free_now or await self.line.wait(True, self.queue_timeout, front=True) is not None:
            self.free -= 1

    async def _shed(self, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        HTTP_SHED.labels(self.service, reason).inc()
        body = error_body("overloaded", "the service is at capacity; retry")
        headers = {"Retry-After": str(self.retry_after)}
        await JSONResponse(body, status_code=503, headers=headers)(scope, receive, send)


_ADMISSION_KEY = "cinema.admission"


def stepped_aside(scope: Scope) -> AbstractAsyncContextManager[None]:
    """Lend the request's admission slot while it waits on another system (see AdmissionControl)."""
    admission: AdmissionControl | None = scope.get(_ADMISSION_KEY)
    return nullcontext() if admission is None else admission.stepped_aside()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text = value.decode("latin-1")
            return text if 0 < len(text) <= 128 else None
    return None


def ops_router(checks: Iterable[tuple[str, ReadinessCheck]]) -> APIRouter:
    """Build `/healthz` (alive), `/readyz` (dependencies reachable) and `/metrics`."""
    router = APIRouter(tags=["operations"])
    named_checks = list(checks)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Tell that the process is alive."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        """Tell whether the process can serve: every dependency answers."""
        results: dict[str, str] = {}
        for name, check in named_checks:
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready
                results[name] = f"failed: {type(exc).__name__}"
        ready = all(value == "ok" for value in results.values())
        body = {"status": "ready" if ready else "unready", "checks": results}
        if not ready:
            body |= {"error": "not_ready", "detail": "a dependency is unreachable"}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Expose Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def instrument(
    app: FastAPI,
    *,
    service: str,
    admission: Admission | None = None,
    access_log: AccessLog | None = None,
) -> None:
    """Wrap `app` with the observability middleware, and admission control if given.

    Admission control sits inside the observability middleware, so shed requests are
    counted, timed and logged like any other answer.
    """
    if admission is not None:
        app.add_middleware(
            AdmissionControl,
            service=service,
            max_in_flight=admission.max_in_flight,
            max_queued=admission.max_queued,
            queue_timeout=admission.queue_timeout,
            prioritized=admission.prioritized,
        )
    app.add_middleware(
        ObservabilityMiddleware, service=service, router_app=app.router, access_log=access_log
    )
