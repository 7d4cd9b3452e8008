"""Held watches of a line's state: one upstream read per show answers every waiting customer."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    first_served: dict[str, float] = field(default_factory=dict)  # version -> wall clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/readyz":
            status, body = 200, {"status": "ready"}
        elif scope["path"] == f"/shows/{SHOW}/line/state":
            self.reads += 1
            status, body = 200, dict(self.state)
            self.first_served.setdefault(body["version"], time.time())
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
    port = int(routed.rsplit(":", 1)[1])
    pid = _listening_pid(port)
    target = f"{WATCH}?seen=v1&until={FAR}"
    with held_clients.held(routed, target, watchers, lambda: _held(client)) as children:
        upstream = _established_to(upstream_port)
        rss_full = _rss_kib(routed) - rss_before
        reads = line.reads
        idle = _cpu_s(pid)
        time.sleep(2)  # the router's own pace with them held: reads, probes, ticks
        cpu = _cpu_s(pid)
        idle_rate = (cpu - idle) / 2
        with _profiled(pid, os.environ.get("WATCH_TEST_PROFILE")):
            sold_out = time.monotonic()
            line.state = {"show_id": SHOW, "version": "v2", "admitted_through": 300}
            line.state |= {"sold_out": True}
            answers, last_read = held_clients.tally(children)
            told = time.monotonic() - sold_out
            fanout = last_read - line.first_served["v2"]
            cpu_told = _cpu_s(pid) - cpu - idle_rate * (time.monotonic() - sold_out)
            # Every connection closed (by the router, or by its keep-alive timer after 5 s).
            wait_until(lambda: _established_to(port) <= 2, 60, 0.2)  # the metrics clients
            cpu_closed = _cpu_s(pid) - cpu - idle_rate * (time.monotonic() - sold_out)
    written = metric(client, "router_watch_final_pass_seconds_sum")  # 0 before the final pass
    per_watch = rss_full / watchers
    print(f"\n{watchers} watchers: told in {told:.2f} s ({fanout:.2f} s from the router's", end=" ")
    print(
        f"read of the sold-out state to the last answer read; written in {written:.2f} s)", end=" "
    )
    print(f"+{rss_full} KiB RSS", end=" ")
    print(
        f"({per_watch:.2f} KiB a watch), {reads} reads; router CPU {cpu_told:.2f} s to the", end=" "
    )
    print(
        f"last answer ({cpu_told / watchers * 1e6:.0f} us a watcher), {cpu_closed:.2f} s", end=" "
    )
    print(f"until all closed ({cpu_closed / watchers * 1e6:.0f} us a watcher), less", end=" ")
    print(f"{idle_rate:.3f} CPU-s/s held idle")
    assert answers == {(200, "v2", True): watchers}
    # The held requests hold no upstream connection: the reads share one (a probe may add one).
    assert upstream <= 2
    assert metric(client, "router_watch_answers_total", reason="final") == watchers
    wait_until(lambda: _held(client) == 0)
    # 8.5 KiB before the connection and the watch were slimmed (docs/benchmarks/onsale-line.md).
    assert per_watch < 6


@contextmanager
def _profiled(pid: int, out: str | None) -> Iterator[None]:
    """py-spy on process `pid` for the block when `out` is a path (WATCH_TEST_PROFILE)."""
    if not out:
        yield
        return
    spy_bin = os.path.join(os.path.dirname(sys.executable), "py-spy")
    command = [spy_bin, "record", "-p", str(pid), "-r", "200", "--nonblocking"]
    spy = subprocess.Popen([*command, "--format", "raw", "-o", out], stdout=subprocess.PIPE)
    assert spy.stdout is not None
    while b"Sampling process" not in spy.stdout.readline():  # attached
        pass
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
        spy.wait(timeout=60)


def _cpu_s(pid: int) -> float:
    """CPU seconds process `pid` has used (user + system, from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _listening_pid(port: int) -> int:
    """The process listening on `port` (from /proc: its socket's inode among processes' files)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(
                os.readlink(f"/proc/{pid}/fd/{fd}") in inodes
                for fd in os.listdir(f"/proc/{pid}/fd")
            ):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"nothing of ours listens on {port}")


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
        reads = line.reads  # two reads later, the far one is still held
        await asyncio.to_thread(wait_until, lambda: line.reads >= reads + 2)
        still_held = _held(client) == 1
        far_writer.close()
        return answer, still_held

    (status, body, _), still_held = asyncio.run(scenario())
    assert (status, body["admitted_through"]) == (200, 5)
    assert still_held
    wait_until(lambda: _held(client) == 0)  # the hung-up client's watch is dropped
    assert metric(client, "router_watch_answers_total", reason="moved") == 1


SOLD_OUT = {"show_id": SHOW, "version": "v2", "admitted_through": 300, "sold_out": True}
GONE = {"show_id": SHOW, "version": "none", "waiting_room": False, "admitted_through": 0}


@pytest.mark.parametrize("final", [SOLD_OUT, GONE], ids=["sold_out", "onsale_gone"])
def test_a_final_state_answers_every_watcher_and_closes_its_connection(
    routed: str, line: LineUpstream, final: dict[str, Any]
) -> None:
    client = httpx.Client(base_url=routed, timeout=10)

    async def scenario() -> tuple[list[Any], list[bytes], Any]:
        targets = [f"{WATCH}?seen=v1&until={FAR}", f"{WATCH}?seen=v1&until=5", f"{WATCH}?seen=v1"]
        held = [await _open_watch(routed, target) for target in targets]
        await asyncio.to_thread(wait_until, lambda: _held(client) == 3)
        at["changed"] = time.time()
        assert metric(client, "router_watch_final_pass_end_timestamp_seconds") < at["changed"]
        line.state = dict(final)
        answers = [await asyncio.wait_for(held_clients.answer(r), 30) for r, _ in held]
        at["told"] = time.time()
        closed = [await asyncio.wait_for(r.read(), 30) for r, _ in held]  # the router closed
        late, late_writer = await _open_watch(routed, f"{WATCH}?seen=v1&until={FAR}")
        late_answer = await asyncio.wait_for(held_clients.answer(late), 30)
        closed.append(await asyncio.wait_for(late.read(), 30))
        for _, writer in [*held, (late, late_writer)]:
            writer.close()
        return answers, closed, late_answer

    at: dict[str, float] = {}  # when the state changed, when the answers were read
    answers, closed, late = asyncio.run(scenario())
    # When the pass that wrote them ended: the benchmarks' "told by the routers" time.
    passed = metric(client, "router_watch_final_pass_end_timestamp_seconds")
    assert at["changed"] <= passed <= at["told"]
    for status, body, headers in [*answers, late]:
        assert (status, body["version"]) == (200, final["version"])
        assert headers.get("connection") == "close"
    assert closed == [b""] * 4
    assert _held(client) == 0
    assert metric(client, "router_watch_answers_total", reason="final") == 3
    assert metric(client, "router_watch_answers_total", reason="at_once") == 1


def test_a_change_that_is_not_final_keeps_the_connection_alive(
    routed: str, line: LineUpstream
) -> None:
    client = httpx.Client(base_url=routed, timeout=10)

    async def scenario() -> tuple[Any, Any]:
        reader, writer = await _open_watch(routed, f"{WATCH}?seen=v1&until={FAR}")
        await asyncio.to_thread(wait_until, lambda: _held(client) == 1)
        line.state = {"show_id": SHOW, "version": "v2", "admitted_through": 0, "drawn": True}
        drawn = await asyncio.wait_for(held_clients.answer(reader), 30)
        # The same connection holds the next watch, and hears the sell-out on it.
        writer.write(f"GET {WATCH}?seen=v2&until={FAR} HTTP/1.1\r\nHost: router\r\n\r\n".encode())
        await asyncio.to_thread(wait_until, lambda: _held(client) == 1)
        line.state = dict(SOLD_OUT, version="v3")
        sold_out = await asyncio.wait_for(held_clients.answer(reader), 30)
        writer.close()
        return drawn, sold_out

    (status, body, headers), (_, last, last_headers) = asyncio.run(scenario())
    assert (status, body["version"]) == (200, "v2")
    assert "connection" not in headers
    assert (last["version"], last_headers.get("connection")) == ("v3", "close")


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


def test_a_pipelined_watch_hears_a_final_state_with_connection_close(
    routed: str, line: LineUpstream
) -> None:
    client = httpx.Client(base_url=routed, timeout=10)

    async def scenario() -> tuple[Any, bytes]:
        host, port = routed.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(  # held on the ASGI path, as in the test above
            b"GET /healthz HTTP/1.1\r\nHost: router\r\n\r\n"
            + f"GET {WATCH}?seen=v1&until={FAR} HTTP/1.1\r\nHost: router\r\n\r\n".encode()
        )
        await writer.drain()
        await asyncio.wait_for(held_clients.answer(reader), 30)
        await asyncio.to_thread(wait_until, lambda: _held(client) == 1)
        line.state = dict(SOLD_OUT)
        watched = await asyncio.wait_for(held_clients.answer(reader), 30)
        closed = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        return watched, closed

    (status, body, headers), closed = asyncio.run(scenario())
    assert (status, body["version"], headers.get("connection")) == (200, "v2", "close")
    assert closed == b""
    assert _held(client) == 0


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
        reads = line.reads  # two reads later, the later arrival's is still held
        await asyncio.to_thread(wait_until, lambda: line.reads >= reads + 2)
        still_held = _held(client) == 1
        late_writer.close()
        return answer, still_held

    (status, body, _), still_held = asyncio.run(scenario())
    assert (status, body["admitted_mark"]) == (200, key)
    assert still_held
    assert metric(client, "router_watch_answers_total", reason="moved") == 1
    assert client.get(WATCH, params={"seen": "v2", "until": "1" * 14}).status_code == 400
