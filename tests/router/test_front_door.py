"""The front door under hostile clients (issue 16): each attack is bounded, the router serves on.

One router with short bounds (1 s deadlines, small caps) in front of the echo upstreams. Each
test runs its attack on raw sockets and asserts that a normal customer gets 200 meanwhile, that
the router closes the attacking connections (polled), that no endpoint slot stays taken and that
no ERROR line or 500 is recorded.
"""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.attacks import (
    close_all,
    closed_by_peer,
    connect,
    dribble,
    flood,
    pipelined,
    sample,
    status_of,
    wait_for,
)
from harness.procs import Proc, router, wait_all_healthy

BOUNDS = {
    "max_in_flight_per_endpoint": 4,
    "client_header_timeout_seconds": 1,
    "client_body_timeout_seconds": 1,
    "client_body_min_bytes_per_second": 100,
    "client_keepalive_seconds": 1,
    "client_write_timeout_seconds": 1,
    "max_header_bytes": 8192,
    "max_header_count": 50,
    "max_pipelined_requests": 8,
    "max_connections_per_client": 64,  # the tests' clients all come from 127.0.0.1
}
ATTACKER = "127.0.0.3"  # loopback too, and no trusted proxy
POLL = 15.0  # how long to wait for what the 1 s bounds bring about, on a loaded machine
CLOSED = "router_connections_closed_total"


@dataclass
class Door:
    """The router under attack, its log and its endpoints."""

    url: str
    log: Path
    endpoints: list[tuple[str, str]]  # (region, endpoint URL)


@pytest.fixture(scope="module")
def door(
    directory_url: str, upstreams: dict[str, Proc], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Door]:
    """A router with short deadlines and small caps, logging to a file."""
    proc = router(directory_url, **BOUNDS)
    proc.log = tmp_path_factory.mktemp("door") / "router.log"
    proc.start()
    try:
        wait_all_healthy(proc.url)
        endpoints = [("eu-west", upstreams["a"].url), ("eu-west", upstreams["b"].url)]
        yield Door(proc.url, proc.log, [*endpoints, ("us-east", upstreams["c"].url)])
    finally:
        proc.kill()


def _in_flight(door: Door) -> float:
    return sum(
        sample(door.url, "router_endpoint_in_flight", region=region, endpoint=endpoint)
        for region, endpoint in door.endpoints
    )


def _internal_errors(url: str) -> float:
    """Proxied requests the router answered 500 itself, over every region."""
    text = httpx.get(f"{url}/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "router_requests_total" and s.labels.get("outcome") == "internal"
    )


def _is_error(line: str) -> bool:
    """Whether a log line (JSON, or raw text before logging is set up) is an error."""
    try:
        level = str(json.loads(line).get("level", ""))
    except ValueError:
        return "ERROR" in line or "Traceback" in line
    return level.lower() in ("error", "critical")


def _settled(door: Door) -> None:
    """No slot stays taken, no ERROR is logged, no 500 is counted."""
    wait_for(lambda: _in_flight(door) == 0, POLL, "an endpoint slot stayed taken")
    assert [line for line in door.log.read_text().splitlines() if _is_error(line)] == []
    assert _internal_errors(door.url) == 0


def test_clients_that_never_read_are_cut_off_and_free_their_slots(door: Door) -> None:
    before = sample(door.url, CLOSED, reason="write_timeout")
    # As many connections as us-east's in-flight cap, each streaming an answer it never reads:
    # once the kernel's buffers are full, each would hold its endpoint slot for good.
    socks = [connect(door.url, rcvbuf=4096) for _ in range(4)]
    try:
        for sock in socks:
            sock.sendall(pipelined("/regions/us-east/big?n=64000000", 1))
        wait_for(
            lambda: (
                status_of(door.url, "/regions/us-east/x") == 200
                and sample(door.url, CLOSED, reason="write_timeout") >= before + 4
            ),
            POLL,
            "clients that never read kept the region's slots",
        )
        assert all(closed_by_peer(sock, POLL) is not None for sock in socks)
    finally:
        close_all(socks)
    _settled(door)


def test_silent_unfinished_and_slow_requests_time_out(door: Door) -> None:
    before = {r: sample(door.url, CLOSED, reason=r) for r in ("header_timeout", "body_timeout")}
    stop = threading.Event()
    silent = [connect(door.url) for _ in range(5)]
    loris = [connect(door.url) for _ in range(5)]
    posts = [connect(door.url) for _ in range(5)]
    head = b"GET /regions/eu-west/x HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    body_head = b"POST /regions/eu-west/x HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n"
    threads = [threading.Thread(target=dribble, args=(s, head, 0.1, stop)) for s in loris]
    for sock in posts:
        sock.sendall(body_head)
        threads.append(threading.Thread(target=dribble, args=(sock, b"{" * 200, 0.1, stop)))
    for thread in threads:
        thread.start()
    try:
        assert status_of(door.url, "/regions/eu-west/x") == 200
        answers = [closed_by_peer(sock, POLL) for sock in silent + loris + posts]
        assert None not in answers, "a connection outlived its deadline"
        for answer in answers[: len(silent)]:  # the others may lose it to their own late bytes
            head_part, _, payload = (answer or b"").partition(b"\r\n\r\n")
            assert head_part.startswith(b"HTTP/1.1 408")
            assert json.loads(payload)["error"] == "request_timeout"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        close_all(silent + loris + posts)
    assert sample(door.url, CLOSED, reason="header_timeout") >= before["header_timeout"] + 10
    assert sample(door.url, CLOSED, reason="body_timeout") >= before["body_timeout"] + 5
    _settled(door)


def test_headers_past_the_caps_get_431(door: Door) -> None:
    before = sample(door.url, CLOSED, reason="headers_too_large")
    # A header that never ends, sent in 4 KB writes: cut off soon after the cap.
    endless = connect(door.url)
    big = b"GET /regions/eu-west/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 << 20)
    sender = threading.Thread(target=flood, args=(endless, big, 4096))
    sender.start()
    try:
        assert status_of(door.url, "/regions/eu-west/x") == 200
        assert closed_by_peer(endless, POLL) is not None
    finally:
        sender.join()
        close_all([endless])
    refused = {
        "large": b"X-Big: " + b"a" * 9000 + b"\r\n",
        "many": b"".join(b"X-H%d: 1\r\n" % n for n in range(60)),
    }
    for kind, extra in refused.items():
        sock = connect(door.url)
        try:
            sock.sendall(b"GET /regions/eu-west/x HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
            head, _, payload = (closed_by_peer(sock, POLL) or b"").partition(b"\r\n\r\n")
        finally:
            close_all([sock])
        assert head.startswith(b"HTTP/1.1 431"), kind
        assert json.loads(payload)["error"] == "headers_too_large"
    with httpx.Client(base_url=door.url) as client:  # under the caps: served
        assert client.get("/regions/eu-west/x", headers={"x-fine": "a" * 4000}).status_code == 200
    assert sample(door.url, CLOSED, reason="headers_too_large") >= before + 2
    assert sample(door.url, CLOSED, reason="too_many_headers") >= 1
    _settled(door)


def test_a_pipeline_past_the_cap_is_closed(door: Door) -> None:
    before = sample(door.url, CLOSED, reason="pipeline_full")
    socks = [connect(door.url) for _ in range(4)]
    data = pipelined("/regions/eu-west/x", 2000)
    senders = [threading.Thread(target=flood, args=(s, data, 65536)) for s in socks]
    for sender in senders:
        sender.start()
    try:
        assert status_of(door.url, "/regions/eu-west/x") == 200
        assert all(closed_by_peer(sock, POLL) is not None for sock in socks)
    finally:
        for sender in senders:
            sender.join()
        close_all(socks)
    assert sample(door.url, CLOSED, reason="pipeline_full") >= before + 4
    # Under the cap a pipelining client gets every answer, then the idle deadline closes it.
    idle_before = sample(door.url, CLOSED, reason="idle_timeout")
    sock = connect(door.url)
    try:
        sock.sendall(pipelined("/regions/eu-west/in-order", 5))
        answers = closed_by_peer(sock, POLL) or b""
    finally:
        close_all([sock])
    assert answers.count(b"HTTP/1.1 200") == 5
    assert sample(door.url, CLOSED, reason="idle_timeout") >= idle_before + 1
    _settled(door)


def test_a_client_that_pipelines_and_hangs_up_is_no_server_error(door: Door) -> None:
    for delay in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
        sock = connect(door.url)
        sock.sendall(pipelined("/regions/eu-west/slow?s=0.1", 5))
        threading.Event().wait(delay)  # hang up at a different point of the pipeline each time
        close_all([sock])
    assert status_of(door.url, "/regions/eu-west/x") == 200
    _settled(door)


def test_end_to_end_headers_survive_a_connection_header(door: Door) -> None:
    named = "keep-alive, idempotency-key, authorization, x-request-id, x-drop-me"
    headers = {
        "connection": named,
        "idempotency-key": "key-16",
        "authorization": "Bearer t",
        "x-request-id": "rid-16",
        "x-drop-me": "1",
    }
    with httpx.Client(base_url=door.url) as client:
        response = client.post("/regions/eu-west/echo", content=b"{}", headers=headers)
    assert response.status_code == 200
    seen = response.json()["headers"]
    assert (seen["idempotency-key"], seen["authorization"]) == ("key-16", "Bearer t")
    assert seen["x-request-id"] == "rid-16"
    assert "x-drop-me" not in seen  # other headers named in Connection are still hop-by-hop
    assert response.headers["x-request-id"] == "rid-16"


@pytest.mark.parametrize(
    "path", ["metrics", "metrics/", "docs", "docs/oauth2-redirect", "redoc", "openapi.json"]
)
def test_replica_internals_are_not_reachable_through_the_router(door: Door, path: str) -> None:
    with httpx.Client(base_url=door.url) as client:
        for region in ("eu-west", "us-east"):
            response = client.get(f"/regions/{region}/{path}")
            assert response.status_code == 404
            assert response.json()["error"] == "not_found"
        assert client.get("/regions/eu-west/metricsx").status_code == 200


@pytest.fixture(scope="module")
def crowded(directory_url: str) -> Iterator[str]:
    """A router that lets one address hold four connections, idle ones for 30 s."""
    proc = router(directory_url, max_connections_per_client=4, client_header_timeout_seconds=30)
    with proc.running() as url:
        yield url


def test_connections_past_the_per_address_cap_are_refused(crowded: str) -> None:
    upgrade = (
        b"GET /regions/eu-west/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    for _ in range(5):  # a connection handed to the WebSocket protocol is no longer counted
        sock = connect(crowded, source=ATTACKER)
        sock.sendall(upgrade)
        answer = closed_by_peer(sock, POLL) or b""
        close_all([sock])
        assert not answer.startswith(b"HTTP/1.1 429")
    holders = [connect(crowded, source=ATTACKER) for _ in range(4)]
    try:
        wait_for(
            lambda: sample(crowded, "router_client_connections") >= 5,  # and the sampler's
            POLL,
            "the four holders were never accepted",
        )
        extra = connect(crowded, source=ATTACKER)
        head, _, payload = (closed_by_peer(extra, POLL) or b"").partition(b"\r\n\r\n")
        close_all([extra])
        assert head.startswith(b"HTTP/1.1 429")
        assert json.loads(payload)["error"] == "too_many_connections"
        assert status_of(crowded, "/regions/eu-west/x") == 200  # other addresses are served
    finally:
        close_all(holders)
    wait_for(
        lambda: sample(crowded, "router_client_connections") <= 1,
        POLL,
        "closed connections stayed counted",
    )
    with httpx.Client(transport=httpx.HTTPTransport(local_address=ATTACKER)) as client:
        assert client.get(f"{crowded}/regions/eu-west/x").status_code == 200
    assert sample(crowded, CLOSED, reason="client_connection_limit") == 1
