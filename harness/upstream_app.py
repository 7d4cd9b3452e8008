"""A tiny regional stand-in for router tests and benchmarks: echoes requests, logs writes.

`?sleep=S` delays the answer to any path by S seconds (`/slow?s=S` too).

Serve with `python -m uvicorn --factory harness.upstream_app:create_app`; configured by
UPSTREAM_NAME, UPSTREAM_REGION and UPSTREAM_WRITE_LOG (every write appends one line there,
with O_APPEND, so the count survives a SIGKILL).
"""

import asyncio
import json
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _json(
    send: Send, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _listing(region: str, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
    if path == "/shows":
        hours = (3, 1, 2) if region == "eu-west" else (4, 0, 5)
        items = [
            {"id": f"show-{region}-{n}", "starts_at": f"2030-01-01T{h:02d}:00:00+00:00"}
            for n, h in enumerate(hours)
        ]
    else:
        days = (1, 3) if region == "eu-west" else (2, 4)
        items = [
            {"id": f"res-{region}-{d}", "created_at": f"2029-12-0{d}T00:00:00+00:00"} for d in days
        ]
    limit = int(query.get("limit", ["50"])[0])
    return {"items": items[:limit], "total": len(items), "limit": limit, "offset": 0}


def create_app() -> ASGIApp:
    """Build the echo app from the environment."""
    name = os.environ.get("UPSTREAM_NAME", "upstream")
    region = os.environ.get("UPSTREAM_REGION", "eu-west")
    log_path = os.environ.get("UPSTREAM_WRITE_LOG")
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if log_path else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        query = parse_qs(scope["query_string"].decode())
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = await _read_body(receive)
        if path == "/readyz":
            await _json(send, 200, {"status": "ready"})
            return
        if method in WRITE_METHODS and log_fd is not None:
            line = (
                f"{name} {headers.get('x-write-id', '-')} {headers.get('idempotency-key', '-')}\n"
            )
            os.write(log_fd, line.encode())
        if path == "/slow" or "sleep" in query:  # `?sleep=` slows any path (a payment's too)
            await asyncio.sleep(float(query.get("s", query.get("sleep", ["1"]))[0]))
        if path in ("/shows", "/me/reservations") or path.startswith("/customers/"):
            if path != "/shows" and "authorization" not in headers:
                await _json(send, 401, {"error": "unauthorized", "detail": "no token"})
            elif "bad" in query:
                await _json(send, 422, {"error": "validation_error", "detail": "bad filter"})
            else:
                await _json(send, 200, _listing(region, path, query))
            return
        if path == "/big":
            await _stream(send, int(query.get("n", ["1000000"])[0]))
            return
        if path == "/blob":  # a framed answer of n bytes, short enough for the fast path
            await _blob(send, int(query.get("n", ["1000"])[0]))
            return
        if path == "/boom":
            await _json(send, 500, {"error": "internal", "detail": "boom"})
            return
        extra = [(b"keep-alive", b"timeout=99"), (b"proxy-authenticate", b"Basic")]
        echo = {
            "upstream": name,
            "region": region,
            "method": method,
            "path": path,
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body_len": len(body),
            **({"body": body.decode("latin-1")} if body else {}),
        }
        await _json(send, 200, echo, extra if path == "/hop" else [])

    return app


async def _stream(send: Send, size: int) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    chunk = b"x" * 65536
    sent = 0
    while sent < size:
        part = chunk[: min(len(chunk), size - sent)]
        sent += len(part)
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _blob(send: Send, size: int) -> None:
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % size)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"x" * size})
