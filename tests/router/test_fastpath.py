"""The proxy's fast path (GETs, small POSTs answered from parser callbacks), real processes.

Paths go to us-east, which has one endpoint, so after a first GET the router holds an idle
connection to it and the requests that follow qualify for the fast path.
"""

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from common.ids import new_id
from harness.procs import client_from, metric, wait_all_healthy
from tests.router.conftest import fast_counts


@pytest.fixture
def client(router_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the router, with an idle upstream connection to us-east."""
    wait_all_healthy(router_url)
    with httpx.Client(base_url=router_url, timeout=5.0) as http:
        assert http.get("/regions/us-east/warm").status_code == 200
        yield http


def _raw(router_url: str, data: bytes, *, until_eof: bool = False, answers: int = 1) -> bytes:
    host, port = router_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not until_eof and received.count(b"HTTP/1.1 ") >= answers and _complete(received):
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _complete(data: bytes) -> bool:
    head, _, body = data.rpartition(b"HTTP/1.1 ")[2].partition(b"\r\n\r\n")
    match = re.search(rb"content-length: (\d+)", head)
    return match is not None and len(body) >= int(match.group(1))


def test_gets_take_the_fast_path_and_reach_the_upstream_intact(client: httpx.Client) -> None:
    before = fast_counts(client)
    for n in range(20):
        response = client.get(f"/regions/us-east/items/{n}?page={n}", headers={"X-Trace": "t"})
        assert response.status_code == 200
        echo = response.json()
        assert (echo["method"], echo["path"], echo["query"]) == ("GET", f"/items/{n}", f"page={n}")
        assert echo["headers"]["x-trace"] == "t"
        assert echo["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert echo["headers"]["x-request-id"] == response.headers["x-request-id"]
    after = fast_counts(client)
    assert after["answered"] - before["answered"] >= 19


def test_fast_answers_carry_the_headers_the_asgi_path_gives(client: httpx.Client) -> None:
    fast = client.get("/regions/us-east/hop", headers={"X-Request-Id": "rid-1"})
    # A percent-encoded path is left to uvicorn's decoding rules: the ASGI path.
    asgi = client.get("/regions/us-east/h%6Fp", headers={"X-Request-Id": "rid-2"})
    assert fast.json()["path"] == asgi.json()["path"] == "/hop"
    for response, request_id in ((fast, "rid-1"), (asgi, "rid-2")):
        names = [name.lower() for name, _ in response.headers.multi_items()]
        assert sorted(names) == [
            "content-length",
            "content-type",
            "date",
            "server",
            "x-request-id",
        ], names
        assert response.headers["x-request-id"] == request_id


def test_pipelined_gets_are_answered_in_order(router_url: str, client: httpx.Client) -> None:
    request = "GET /regions/us-east/n{} HTTP/1.1\r\nHost: x\r\n\r\n"
    data = _raw(router_url, "".join(request.format(n) for n in range(3)).encode(), answers=3)
    assert [int(n) for n in re.findall(rb'"path": "/n(\d)"', data)] == [0, 1, 2]


def test_http10_client_gets_its_answer_then_the_connection_closes(
    router_url: str, client: httpx.Client
) -> None:
    data = _raw(router_url, b"GET /regions/us-east/old HTTP/1.0\r\n\r\n", until_eof=True)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in head.lower()
    assert b'"path": "/old"' in body


def _answered_us_east(client: httpx.Client) -> float:
    """us-east requests answered, whether or not the client was still there to read it."""
    return sum(
        metric(client, "router_requests_total", outcome=outcome, region="us-east")
        for outcome in ("ok", "client_gone")
    )


def test_a_client_that_hangs_up_early_leaves_the_router_serving(
    router_url: str, client: httpx.Client
) -> None:
    host, port = router_url.removeprefix("http://").split(":")
    before = _answered_us_east(client)
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /regions/us-east/slow?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 5
    while _answered_us_east(client) < before + 3:  # the upstream answered all three, unread
        assert time.monotonic() < deadline, "the abandoned requests never finished"
        time.sleep(0.05)
    for _ in range(5):
        assert client.get("/regions/us-east/after").json()["path"] == "/after"


def test_a_long_streamed_answer_is_resumed_on_the_asgi_path(client: httpx.Client) -> None:
    before = fast_counts(client)
    response = client.get("/regions/us-east/big?n=300000")
    assert response.status_code == 200
    assert response.content == b"x" * 300000
    assert fast_counts(client)["resumed"] - before["resumed"] >= 1


def test_upstream_5xx_passes_through_and_is_counted(client: httpx.Client) -> None:
    response = client.get("/regions/us-east/boom")
    assert (response.status_code, response.json()["error"]) == (500, "internal")
    metrics = client.get("/metrics").text
    assert re.search(
        r'router_requests_total\{outcome="upstream_5xx",region="us-east"\} [1-9]', metrics
    )


def test_a_fast_get_that_times_out_is_retried_then_answered_504(client: httpx.Client) -> None:
    before = fast_counts(client)
    started = time.monotonic()
    response = client.get("/regions/us-east/slow?s=3")
    assert (response.status_code, response.json()["error"]) == (504, "upstream_timeout")
    assert time.monotonic() - started < 2.5  # the request deadline (1.5 s), not the upstream's 3 s
    assert fast_counts(client)["resumed"] - before["resumed"] >= 1


def test_latency_histogram_is_cumulative(client: httpx.Client) -> None:
    client.get("/regions/us-east/hist")
    metrics = client.get("/metrics").text
    pattern = r'router_request_duration_seconds_bucket\{le="([^"]+)",outcome="ok",region="us-east"\} ([\d.e+]+)'
    buckets = [(bound, float(count)) for bound, count in re.findall(pattern, metrics)]
    assert buckets[-1][0] == "+Inf"
    counts = [count for _, count in buckets]
    assert counts == sorted(counts)
    assert counts[-1] >= 1
    total = re.search(
        r'router_request_duration_seconds_count\{outcome="ok",region="us-east"\} ([\d.e+]+)',
        metrics,
    )
    assert total is not None
    assert float(total.group(1)) == counts[-1]


def _seen_by_client(response: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    """Status, headers (but the date) and the upstream's echo of the request it received."""
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k != "date")
    return response.status_code, headers, response.json()


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        (f"/shows/{new_id('show', 'us-east')}/holds", {}),
        (f"/reservations/{new_id('res', 'us-east')}/payments", {"Idempotency-Key": "pay-f1"}),
    ],
    ids=["hold", "payment"],
)
def test_a_hold_and_a_payment_look_the_same_on_both_paths(
    router_url: str, asgi_router_url: str, path: str, extra: dict[str, str]
) -> None:
    body = b'{"seat_ids": ["s-1", "s-2"], "method": "card"}'
    headers = {
        "X-Request-Id": f"rid-{path[1:4]}",
        "Authorization": "Bearer t",
        "Content-Type": "application/json",
        "Connection": "keep-alive, x-drop-me",
        "X-Drop-Me": "1",
        "X-Forwarded-For": "198.51.100.9",
        **extra,
    }
    seen = []
    for url in (router_url, asgi_router_url):
        wait_all_healthy(url)
        with client_from("127.0.0.7", url) as client:  # an address of this test's own
            assert client.get("/regions/us-east/warm").status_code == 200
            before = fast_counts(client)
            response = client.post(path, content=body, headers=headers)
            after = fast_counts(client)
        seen.append(_seen_by_client(response))
        fast = url == router_url
        assert after["answered"] - before["answered"] == (1 if fast else 0)
        assert after["resumed"] == before["resumed"]
    assert seen[0] == seen[1]
    status, answer_headers, echo = seen[0]
    assert status == 200
    assert ("x-request-id", headers["X-Request-Id"]) in answer_headers
    assert (echo["method"], echo["path"], echo["body"]) == ("POST", path, body.decode())
    upstream_headers = echo["headers"]
    assert upstream_headers["x-forwarded-for"] == "127.0.0.7"
    assert upstream_headers["content-length"] == str(len(body))
    assert upstream_headers["authorization"] == "Bearer t"
    assert upstream_headers.get("idempotency-key") == extra.get("Idempotency-Key")
    for name in ("connection", "x-drop-me"):
        assert name not in upstream_headers, name


def test_pipelined_posts_and_a_refused_one_are_answered_in_order(
    router_url: str, client: httpx.Client
) -> None:
    show = new_id("show", "us-east")
    posts = "".join(
        f"POST /shows/{show}/holds HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
        for _ in range(4)  # hold_burst=3: the fourth is refused with 429
    )
    tail = "GET /regions/us-east/last HTTP/1.1\r\nHost: x\r\n\r\n"
    host, port = router_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), source_address=("127.0.0.8", 0)) as sock:
        sock.settimeout(5)
        sock.sendall((posts + tail).encode())
        received = b""
        while received.count(b"HTTP/1.1 ") < 5 or not _complete(received):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    statuses = [int(s) for s in re.findall(rb"HTTP/1.1 (\d+)", received)]
    assert statuses == [200, 200, 200, 429, 200]
    assert b'"error": "rate_limited"' in received
    assert received.rstrip().endswith(b'"body_len": 0}')  # the GET's echo, last


def test_a_post_over_the_body_limit_still_gets_413(client: httpx.Client) -> None:
    response = client.post("/regions/us-east/echo", content=b"x" * 1025)  # max_body_bytes=1024
    assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")


def test_a_post_expecting_100_continue_is_left_to_the_asgi_path(
    router_url: str, client: httpx.Client
) -> None:
    before = fast_counts(client)
    host, port = router_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = b"POST /regions/us-east/e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        sock.sendall(head + b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")  # uvicorn's, when asked
        sock.sendall(b"{}")
        received = b""
        while not _complete(received):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert b'"body": "{}"' in received
    assert fast_counts(client) == before


def test_requests_to_a_region_of_two_endpoints_find_either_ones_idle_connection(
    router_url: str,
) -> None:
    with client_from("127.0.0.10", router_url) as client:
        for _ in range(4):  # eu-west has two endpoints: leave an idle connection to one at least
            assert client.get("/regions/eu-west/warm").status_code == 200
        before = fast_counts(client)
        for n in range(6):
            assert client.post(f"/regions/eu-west/w{n}", json={}).status_code == 200
            assert client.get(f"/regions/eu-west/r{n}").status_code == 200
        after = fast_counts(client)
    assert (after["answered"] - before["answered"], after["resumed"] - before["resumed"]) == (12, 0)
