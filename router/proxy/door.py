"""The front door's bounds on client connections: deadlines, header caps, pipelines, per address.

`router.proxy.protocol.RouterProtocol` enforces them on every connection; this module holds the
settings it reads, the open connections per client address and the metrics (docs/operations.md).
"""

import json
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from router.config import RouterSettings
from schemas.errors import error_body

CONNECTIONS = Gauge("router_client_connections", "Client connections open to the router")
CLOSED = Counter(
    "router_connections_closed_total",
    "Client connections the router closed itself, by the bound that closed them",
    ["reason"],
)
LIMITS = Gauge(
    "router_client_limit",
    "The router's configured bounds on client connections (ROUTER_ settings)",
    ["setting"],
)

# Every reason a connection is closed by the router, so each series exists from the start.
REASONS = (
    "header_timeout",
    "body_timeout",
    "idle_timeout",
    "write_timeout",
    "headers_too_large",
    "too_many_headers",
    "pipeline_full",
    "client_connection_limit",
)
_LIMIT_SETTINGS = (
    "client_header_timeout_seconds",
    "client_body_timeout_seconds",
    "client_body_min_bytes_per_second",
    "client_keepalive_seconds",
    "client_write_timeout_seconds",
    "max_header_bytes",
    "max_header_count",
    "max_pipelined_requests",
    "max_connections_per_client",
)


@dataclass(slots=True)
class Refusal:
    """An answer written straight to a connection before it is closed."""

    status: int
    payload: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(cls, status: int, code: str, detail: str, **extra: int) -> "Refusal":
        """A refusal carrying the `schemas` error body."""
        payload = json.dumps(error_body(code, detail, **extra)).encode()
        return cls(status, payload)

    def encode(self, status_line: bytes, default_headers: bytes) -> bytes:
        """The whole answer, `connection: close` included."""
        headers = b"".join(name + b": " + value + b"\r\n" for name, value in self.headers)
        return b"".join(
            (
                status_line,
                default_headers,
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(self.payload),
                headers,
                b"connection: close\r\n\r\n",
                self.payload,
            )
        )


class FrontDoor:
    """The bounds of one router process, and its open connections per client address."""

    def __init__(self, settings: RouterSettings) -> None:
        self.header_timeout = settings.client_header_timeout_seconds
        self.body_timeout = settings.client_body_timeout_seconds
        self.body_min_rate = settings.client_body_min_bytes_per_second
        self.keepalive = settings.client_keepalive_seconds
        self.write_timeout = settings.client_write_timeout_seconds
        self.max_header_bytes = settings.max_header_bytes
        self.max_header_count = settings.max_header_count
        self.max_pipelined = settings.max_pipelined_requests
        self.max_per_client = settings.max_connections_per_client
        self._open: dict[str, int] = {}
        for name in _LIMIT_SETTINGS:
            LIMITS.labels(name).set(float(getattr(settings, name)))
        for reason in REASONS:
            CLOSED.labels(reason)
        self.timeout = Refusal.of(408, "request_timeout", "the request did not arrive in time")
        self.too_large = Refusal.of(
            431,
            "headers_too_large",
            f"request headers over {self.max_header_bytes} bytes",
            max_bytes=self.max_header_bytes,
        )
        self.too_many = Refusal.of(
            431,
            "headers_too_large",
            f"more than {self.max_header_count} request headers",
            max_headers=self.max_header_count,
        )
        self.crowded = Refusal(
            429,
            json.dumps(
                error_body(
                    "too_many_connections",
                    f"over {self.max_per_client} connections from one address",
                    retry_after=1,
                )
            ).encode(),
            ((b"retry-after", b"1"),),
        )

    def admit(self, client: str) -> bool:
        """Count a new connection from `client`; False if that address is at its cap."""
        count = self._open.get(client, 0)
        if count >= self.max_per_client:
            return False
        self._open[client] = count + 1
        return True

    def release(self, client: str) -> None:
        """Forget one connection from `client`."""
        count = self._open.get(client, 0) - 1
        if count > 0:
            self._open[client] = count
        else:
            self._open.pop(client, None)

    @staticmethod
    def closed(reason: str) -> None:
        """Count a connection the router closed."""
        CLOSED.labels(reason).inc()
