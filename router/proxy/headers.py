"""Header rewriting between client and upstream: hop-by-hop removal, forwarding headers."""

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from router.proxy.clients import TrustedProxies

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Rewritten by the router (or by the HTTP client: host, content-length). The client's own
# forwarding headers are replaced, never passed on: services behind believe the router's.
_REQUEST_REWRITTEN = frozenset(
    {
        b"host",
        b"content-length",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
        b"x-real-ip",
    }
)
# The body is buffered before it is sent: an interim `100 Continue` would only confuse the client.
_REQUEST_EXPECT = frozenset({b"expect"})
_REQUEST_SPECIAL = HOP_BY_HOP | _REQUEST_REWRITTEN | _REQUEST_EXPECT
# uvicorn always adds its own `date` and `server`; passing the upstream's would duplicate them.
_RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server"}

REQUEST_ID = "x-request-id"
MAX_REQUEST_ID = 128
# Never hop-by-hop, whatever `Connection` names: the platform acts on them end to end.
END_TO_END = frozenset({b"idempotency-key", b"authorization", b"x-request-id"})


@dataclass(slots=True)
class Inbound:
    """What the router needs from the client's headers, and the headers to send upstream."""

    forward: list[tuple[bytes, bytes]] = field(default_factory=list)
    request_id: str = ""
    content_length: int | None = None
    chunked: bool = False
    idempotency_key: bool = False
    bad_length: bool = False
    forwarded: bool = False  # X-Forwarded-For or -Proto came in (uvicorn may act on them)
    client: str | None = None  # the socket peer, or the client a trusted proxy names


def read_request_headers(
    raw: Iterable[tuple[bytes, bytes]],
    *,
    client: str | None,
    scheme: str,
    trusted: TrustedProxies | None = None,
) -> Inbound:
    """Split the client's headers into the forwarded set and the facts the router acts on."""
    inbound = Inbound()
    forward = inbound.forward
    forwarded_for: list[str] = []
    forwarded_proto = b""
    connection_tokens: list[bytes] = []
    for name, value in raw:
        if name not in _REQUEST_SPECIAL:
            if name == b"idempotency-key":
                inbound.idempotency_key = True
            forward.append((name, value))
        elif name == b"x-request-id":
            if 0 < len(value) <= MAX_REQUEST_ID:
                inbound.request_id = value.decode("latin-1")
        elif name == b"content-length":
            inbound.content_length, inbound.bad_length = _length(value)
        elif name == b"x-forwarded-for":
            forwarded_for.append(value.decode("latin-1"))
            inbound.forwarded = True
        elif name == b"x-forwarded-proto":
            forwarded_proto = value
            inbound.forwarded = True
        elif name == b"transfer-encoding":
            inbound.chunked = True
        elif name == b"connection":
            connection_tokens.extend(t.strip().lower() for t in value.split(b","))
    if connection_tokens:
        _drop_named(forward, connection_tokens)
    # Ids need to be unique, not secret: the Mersenne twister is far cheaper than uuid4.
    inbound.request_id = inbound.request_id or f"{random.getrandbits(128):032x}"
    forward.append((b"x-request-id", inbound.request_id.encode("latin-1")))
    if trusted is not None and client is not None and forwarded_for and client in trusted:
        inbound.client = trusted.client(client, forwarded_for)
        if forwarded_proto in (b"http", b"https"):
            scheme = forwarded_proto.decode()
    else:
        inbound.client = client
    if inbound.client:
        forward.append((b"x-forwarded-for", inbound.client.encode("latin-1")))
    forward.append((b"x-forwarded-proto", scheme.encode("latin-1")))
    return inbound


def _length(value: bytes) -> tuple[int | None, bool]:
    if not value.isdigit():
        return None, True
    return int(value), False


def _drop_named(forward: list[tuple[bytes, bytes]], tokens: list[bytes]) -> None:
    # Headers named in `Connection` are hop-by-hop too (RFC 9110 section 7.6.1).
    named = {token for token in tokens if token} - END_TO_END
    forward[:] = [(k, v) for k, v in forward if k not in named]


def response_headers(
    raw: Iterable[tuple[bytes, bytes]], request_id: str
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers minus hop-by-hop ones, with the request id."""
    out: list[tuple[bytes, bytes]] = []
    has_id = False
    connection_tokens: list[bytes] = []
    for name, value in raw:
        lower = name.lower()
        if lower in _RESPONSE_DROP:
            if lower == b"connection":
                connection_tokens.extend(t.strip().lower() for t in value.split(b","))
            continue
        has_id = has_id or lower == b"x-request-id"
        out.append((lower, value))
    if connection_tokens:
        named = set(connection_tokens) - END_TO_END
        out = [(k, v) for k, v in out if k not in named]
    if not has_id:
        out.append((b"x-request-id", request_id.encode("latin-1")))
    return out
