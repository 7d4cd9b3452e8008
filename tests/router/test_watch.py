"""Held watches of a line's state: one upstream read per show answers every waiting customer."""

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from common.ids import new_id
from harness.live import live_server
from harness.procs import FakeDirectory, directory_map, metric, router, wait_all_healthy
from harness.tokens import TestIssuer
from tests.router import held_clients
from tests.support.poll import wait_until

SHOW = new_id("show", "eu-west")
WATCH = f"/shows/{SHOW}/line/watch"
FAR = 1_000_000  # a line number admission does not reach in these tests


@dataclass
class LineUpstream:
    """A region stand-in that serves one show's line state, as the test sets it."""

    state: dict[str, Any] = field(
        default_factory=lambda: {"show_id": SHOW, "version": "v1", "admitted_through": 0}
    )
    reads: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/readyz":
            status, body = 200, {"status": "ready"}
        elif scope["path"] == f"/shows/{SHOW}/line/state":
            self.reads += 1
            status, body = 200, dict(self.state)
        else:
            status, body = 404, {"error": "not_found", "detail": "no such thing"}
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
def line() -> LineUpstream:
    return LineUpstream()


@pytest.fixture
def upstream_url(line: LineUpstream) -> Iterator[str]:
    with live_server(line) as url:
        yield url


@pytest.fixture
def routed(upstream_url: str, issuer: TestIssuer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A router in front of the line upstream; more settings by indirect parametrization."""
    settings: dict[str, Any] = getattr(request, "param", {})
    document = directory_map("v1", {"eu-west": [upstream_url]}, {})
    with live_server(FakeDirectory(document, issuer.jwks)) as directory_url:
        options = {"max_connections_per_client": 20_000, "watch_jitter_seconds": 0} | settings
        with router(directory_url, **options).running() as url:
            wait_all_healthy(url)
            yield url


def _established_to(port: int) -> int:
    """TCP connections open now whose server end is `port` (from /proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as rows:
            next(rows)
            for row in rows:
                local, state = row.split()[1], row.split()[3]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


async def _open_watch(base: str, target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {target} HTTP/1.1\r\nHost: router\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


def _held(client: httpx.Client) -> float:
    return metric(client, "router_watchers")


# Opening 20,000 takes longer than a watch is held by default.
@pytest.mark.parametrize("routed", [{"watch_timeout_seconds": 600}], indirect=True)
def test_thousands_of_held_watches_hear_the_sell_out_from_one_read(
    routed: str, line: LineUpstream, upstream_url: str
) -> None:
    watchers = int(os.environ.get("WATCH_TEST_WATCHERS", "2000"))
    client = httpx.Client(base_url=routed, timeout=10)
    upstream_port = int(upstream_url.rsplit(":", 1)[1])
    rss_before = _rss_kib(routed)
    target = f"{WATCH}?seen=v1&until={FAR}"
    with held_clients.held(routed, target, watchers, lambda: _held(client)) as children:
        upstream = _established_to(upstream_port)
        rss_full = _rss_kib(routed) - rss_before
        reads = line.reads
        sold_out = time.monotonic()
        line.state = {"show_id": SHOW, "version": "v2", "admitted_through": 300, "sold_out": True}
        answers = held_clients.tally(children)
        told = time.monotonic() - sold_out
    per_watch = rss_full / watchers
    print(f"\n{watchers} watchers: told in {told:.2f} s, +{rss_full} KiB RSS", end=" ")
    print(f"({per_watch:.2f} KiB a watch), {reads} reads")
    assert answers == {(200, "v2", True): watchers}
    # The held requests hold no upstream connection: the reads share one (a probe may add one).
    assert upstream <= 2
    assert metric(client, "router_watch_answers_total", reason="changed") >= watchers
    wait_until(lambda: _held(client) == 0)
    # 8.5 KiB before the connection and the watch were slimmed (docs/benchmarks/onsale-line.md).
    assert per_watch < 6


def _rss_kib(base: str) -> int:
    """The router's resident memory (KiB), from its process_resident_memory_bytes."""
    with httpx.Client(base_url=base, timeout=10) as client:
        return int(metric(client, "process_resident_memory_bytes") // 1024)


def test_a_watch_is_answered_when_admission_reaches_its_line_number(
    routed: str, line: LineUpstream
) -> None:
    client = httpx.Client(base_url=routed, timeout=10)

    async def scenario() -> tuple[Any, bool]:
        near, _ = await _open_watch(routed, f"{WATCH}?seen=v1&until=5")
        _far, far_writer = await _open_watch(routed, f"{WATCH}?seen=v1&until={FAR}")
        await asyncio.to_thread(wait_until, lambda: _held(client) == 2)
        line.state = {"show_id": SHOW, "version": "v1", "admitted_through": 5}
        answer = await asyncio.wait_for(held_clients.answer(near), 30)
        await asyncio.sleep(0.5)  # a few reads later, the far one is still held
        still_held = _held(client) == 1
        far_writer.close()
        return answer, still_held

    (status, body, _), still_held = asyncio.run(scenario())
    assert (status, body["admitted_through"]) == (200, 5)
    assert still_held
    wait_until(lambda: _held(client) == 0)  # the hung-up client's watch is dropped
    assert metric(client, "router_watch_answers_total", reason="moved") == 1


def test_a_stale_version_is_answered_at_once_and_a_bad_line_number_is_a_400(
    routed: str, line: LineUpstream
) -> None:
    client = httpx.Client(base_url=routed, timeout=10)
    first = client.get(WATCH, params={"seen": ""})  # no version yet: after the first read
    assert (first.status_code, first.json()["version"]) == (200, "v1")
    again = client.get(WATCH, params={"seen": "v0", "until": FAR})
    assert again.json()["version"] == "v1"
    assert metric(client, "router_watch_answers_total", reason="at_once") >= 1
    bad = client.get(WATCH, params={"seen": "v1", "until": "soon"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_request"


@pytest.mark.parametrize("routed", [{"watch_timeout_seconds": 0.5}], indirect=True)
def test_a_watch_with_no_news_is_answered_after_its_hold(routed: str, line: LineUpstream) -> None:
    client = httpx.Client(base_url=routed, timeout=10)
    held = client.get(WATCH, params={"seen": "v1", "until": FAR})
    assert (held.status_code, held.json()["version"]) == (200, "v1")
    assert metric(client, "router_watch_answers_total", reason="timeout") == 1


@pytest.mark.parametrize("routed", [{"watchers_max": 3}], indirect=True)
def test_past_the_cap_a_watch_gets_503_with_retry_after(routed: str, line: LineUpstream) -> None:
    client = httpx.Client(base_url=routed, timeout=10)

    async def scenario() -> tuple[Any, Any]:
        held = [await _open_watch(routed, f"{WATCH}?seen=v1&until={FAR}") for _ in range(3)]
        await asyncio.to_thread(wait_until, lambda: _held(client) == 3)
        reader, writer = await _open_watch(routed, f"{WATCH}?seen=v1&until={FAR}")
        refused = await asyncio.wait_for(held_clients.answer(reader), 30)
        # Proxied requests are not held against the cap: the router still forwards them.
        other = await asyncio.to_thread(client.get, f"/shows/{SHOW}/line/state")
        for _, held_writer in [*held, (reader, writer)]:
            held_writer.close()
        return refused, other

    (status, body, headers), other = asyncio.run(scenario())
    assert status == 503
    assert body["error"] == "watchers_full"
    assert int(headers["retry-after"]) >= 1
    assert other.status_code == 200
    assert metric(client, "router_watch_refused_total") == 1


def test_a_pipelined_watch_is_held_on_the_asgi_path_too(routed: str, line: LineUpstream) -> None:
    client = httpx.Client(base_url=routed, timeout=10)

    async def scenario() -> tuple[Any, Any]:
        host, port = routed.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        # Behind a request still being answered, uvicorn runs the next one as an ASGI cycle.
        writer.write(
            b"GET /healthz HTTP/1.1\r\nHost: router\r\n\r\n"
            + f"GET {WATCH}?seen=v1&until={FAR} HTTP/1.1\r\nHost: router\r\n\r\n".encode()
        )
        await writer.drain()
        health = await asyncio.wait_for(held_clients.answer(reader), 30)
        await asyncio.to_thread(wait_until, lambda: _held(client) == 1)
        line.state = {"show_id": SHOW, "version": "v2", "admitted_through": 0}
        watched = await asyncio.wait_for(held_clients.answer(reader), 30)
        writer.close()
        return health, watched

    health, (status, body, _) = asyncio.run(scenario())
    assert health[0] == 200
    assert (status, body["version"]) == (200, "v2")


def test_a_router_that_stops_answers_its_watches_so_clients_re_open(
    upstream_url: str, issuer: TestIssuer, line: LineUpstream
) -> None:
    document = directory_map("v1", {"eu-west": [upstream_url]}, {})
    with live_server(FakeDirectory(document, issuer.jwks)) as directory_url:
        proc = router(directory_url, watch_jitter_seconds=0).start()
        try:
            wait_all_healthy(proc.url)
            client = httpx.Client(base_url=proc.url, timeout=10)

            async def scenario() -> Any:
                reader, writer = await _open_watch(proc.url, f"{WATCH}?seen=v1&until={FAR}")
                await asyncio.to_thread(wait_until, lambda: _held(client) == 1)
                assert proc.proc is not None
                os.kill(proc.proc.pid, signal.SIGTERM)  # a graceful stop, as on a deploy
                answer = await asyncio.wait_for(held_clients.answer(reader), 30)
                closed = await asyncio.wait_for(reader.read(), 30)  # then the connection ends
                writer.close()
                return answer, closed

            (status, body, headers), closed = asyncio.run(scenario())
        finally:
            proc.kill()
    assert (status, body["version"]) == (200, "v1")
    assert headers.get("connection") == "close"
    assert closed == b""


def test_an_early_customers_watch_is_answered_when_the_mark_passes_its_draw_key(
    routed: str, line: LineUpstream
) -> None:
    client = httpx.Client(base_url=routed, timeout=10)
    key, later = 734_512_009_871, 1_000_000_000_004  # a draw key; 10^12 + rank 4
    drawn = {"show_id": SHOW, "version": "v2", "drawn": True, "early_count": 900}
    line.state = drawn | {"admitted_through": 600, "admitted_mark": key - 1}

    async def scenario() -> tuple[Any, bool]:
        early, _ = await _open_watch(routed, f"{WATCH}?seen=v2&until={key}")
        _late, late_writer = await _open_watch(routed, f"{WATCH}?seen=v2&until={later}")
        await asyncio.to_thread(wait_until, lambda: _held(client) == 2)
        reads = line.reads
        await asyncio.to_thread(wait_until, lambda: line.reads >= reads + 2)  # not yet its turn
        assert _held(client) == 2
        # A rank far below 10^12 in admitted_through: the router compares the mark only.
        line.state = drawn | {"admitted_through": 601, "admitted_mark": key}
        answer = await asyncio.wait_for(held_clients.answer(early), 30)
        await asyncio.sleep(0.5)  # a few reads later, the later arrival's is still held
        still_held = _held(client) == 1
        late_writer.close()
        return answer, still_held

    (status, body, _), still_held = asyncio.run(scenario())
    assert (status, body["admitted_mark"]) == (200, key)
    assert still_held
    assert metric(client, "router_watch_answers_total", reason="moved") == 1
    assert client.get(WATCH, params={"seen": "v2", "until": "1" * 14}).status_code == 400
