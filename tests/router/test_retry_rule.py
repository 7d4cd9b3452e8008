"""The retry rule in the sender: repeat what is safe, or what never left the router."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from harness.ports import dead_url
from harness.procs import Proc
from router.config import RouterSettings
from router.upstreams.http1 import Http1Pool
from router.upstreams.pool import Endpoint, Health, RegionPool
from router.upstreams.send import NoHealthyEndpoint, Outbound, Sender, UpstreamFailed

SETTINGS = RouterSettings(retry_budget=2, retry_backoff_seconds=0.001, attempt_timeout_seconds=1)


def _endpoint(url: str) -> Endpoint:
    client = Http1Pool(url, limit=8, keepalive=4, connect_timeout=0.3, read_timeout=1)
    return Endpoint(region="eu-west", url=url, client=client)


def _request(method: str, *, key: bool = False) -> Outbound:
    headers = [(b"idempotency-key", b"k-1")] if key else []
    return Outbound(
        method=method,
        path="/echo",
        headers=headers,
        body=b"{}" if method == "POST" else None,
        repeatable=method == "GET" or key,
        deadline=time.monotonic() + 2,
    )


async def _with_dropper(scenario: Callable[[str, list[int]], Awaitable[None]]) -> None:
    """Run `scenario` next to a server that reads each request and hangs up without answering."""
    received: list[int] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        received.append(1)
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await scenario(f"http://127.0.0.1:{port}", received)


def test_a_refused_connect_is_retried_even_for_an_unkeyed_write(upstreams: dict[str, Proc]) -> None:
    async def scenario(nowhere: str) -> None:
        dead, live = _endpoint(nowhere), _endpoint(upstreams["c"].url)
        live.in_flight = 1  # the dead one is the least loaded: it is tried first
        sender = Sender(SETTINGS, Health(SETTINGS))
        sent = await sender.send(RegionPool("eu-west", [dead, live]), _request("POST"))
        assert (sent.response.status, sent.endpoint) == (200, live)
        sent.done()
        assert not dead.healthy

    with dead_url() as nowhere:
        asyncio.run(scenario(nowhere))


def test_a_dropped_write_is_repeated_only_with_a_key(upstreams: dict[str, Proc]) -> None:
    async def scenario(dropper: str, received: list[int]) -> None:
        sender = Sender(SETTINGS, Health(SETTINGS))
        for method, key, retried in (
            ("POST", False, False),
            ("POST", True, True),
            ("GET", False, True),
        ):
            received.clear()
            drop, live = _endpoint(dropper), _endpoint(upstreams["c"].url)
            live.in_flight = 1
            pool = RegionPool("eu-west", [drop, live])
            if retried:
                sent = await sender.send(pool, _request(method, key=key))
                assert sent.endpoint is live
                sent.done()
            else:
                with pytest.raises(UpstreamFailed) as failed:
                    await sender.send(pool, _request(method, key=key))
                assert failed.value.kind == "connection"
            assert received == [1]  # the dropper saw the request exactly once

    asyncio.run(_with_dropper(scenario))


def test_no_healthy_endpoint_fails_at_once() -> None:
    async def scenario(nowhere: str) -> None:
        sender = Sender(SETTINGS, Health(SETTINGS))
        only = _endpoint(nowhere)
        started = time.perf_counter()
        with pytest.raises(NoHealthyEndpoint):
            await sender.send(RegionPool("eu-west", [only]), _request("GET"))
        assert time.perf_counter() - started < 0.5

    with dead_url() as nowhere:
        asyncio.run(scenario(nowhere))
