"""Structured JSON logs, request ids, Prometheus request metrics, /healthz, /readyz, /metrics."""

import contextvars
import json
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
        return json.dumps(entry, default=str)


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


class ObservabilityMiddleware:
    """Pure ASGI middleware: request id in and out, access log, request metrics by route."""

    def __init__(self, app: ASGIApp, *, service: str, router_app: ASGIApp | None = None) -> None:
        self.app = app
        self.service = service
        self.router_app = router_app
        self.log = logging.getLogger("access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, REQUEST_ID_HEADER) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(self.router_app or self.app, scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, route).observe(elapsed)
            if status >= 500 or route not in _QUIET_ROUTES:
                self.log.info(
                    "request",
                    extra={
                        "fields": {
                            "method": method,
                            "path": scope["path"],
                            "route": route,
                            "status": status,
                            "ms": round(elapsed * 1000, 2),
                        }
                    },
                )
            request_id_var.reset(token)


_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key == wanted:
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


def instrument(app: FastAPI, *, service: str) -> None:
    """Wrap `app` with the observability middleware."""
    app.add_middleware(ObservabilityMiddleware, service=service, router_app=app.router)
