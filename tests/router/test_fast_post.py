"""A POST the upstream may have read is sent again only if ProxyApp would: with a key.

An upstream that reads each POST to `/drop` and hangs up, or to `/hang` and never answers,
sits behind two routers on one directory: the deployed one (small POSTs on the fast path) and
the same router with every request on the ASGI path. Each case is sent to both; the upstream
counts what reached it, and both routers must give the same answer after the same attempts.
"""

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.live import live_server
from harness.procs import FakeDirectory, directory_map, metric, router, wait_all_healthy
from harness.tokens import TestIssuer
from tests.router.conftest import ASGI_ONLY, fast_counts

SETTINGS = {"retry_budget": 1, "attempt_timeout_seconds": 0.5, "request_deadline_seconds": 3}
_PAYLOAD = b'{"ok": true}'
_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(_PAYLOAD),
    _PAYLOAD,
)


class _Dropper(socketserver.ThreadingTCPServer):
    """Answers GETs on kept-alive connections; reads POSTs to /drop or /hang and never answers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, str | None]] = []  # (path, Idempotency-Key) per POST

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        server: _Dropper = self.server  # type: ignore[assignment]
        pending = b""
        while True:
            request = _read_request(sock, pending)
            if request is None:
                return
            method, path, headers, pending = request
            if method == "POST":
                server.received.append((path, headers.get("idempotency-key")))
            if path.startswith("/drop"):
                return  # the handler's end closes the connection: read, never answered
            if path.startswith("/hang"):
                while sock.recv(65536):  # until the router gives up and closes
                    pass
                return
            sock.sendall(_OK)
            if headers.get("connection", "").lower() == "close":
                return


def _read_request(
    sock: socket.socket, data: bytes
) -> tuple[str, str, dict[str, str], bytes] | None:
    """The next request's method, path and headers, its body read, and the bytes after it."""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(data) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    return method, path, headers, data[length:]


@pytest.fixture(scope="module")
def dropper() -> Iterator[_Dropper]:
    """The misbehaving upstream, serving in a thread."""
    server = _Dropper()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def routers(dropper: _Dropper) -> Iterator[dict[str, str]]:
    """The deployed router ("fast") and an ASGI-only one, eu-west being the dropper alone."""
    issuer = TestIssuer()
    document = directory_map("v1", {"eu-west": [dropper.url]}, {})
    with live_server(FakeDirectory(document, issuer.jwks)) as directory_url:
        fast = router(directory_url, **SETTINGS)
        asgi = router(directory_url, **SETTINGS)
        asgi.http = ASGI_ONLY
        with fast.running() as fast_url, asgi.running() as asgi_url:
            for url in (fast_url, asgi_url):
                wait_all_healthy(url)
            yield {"fast": fast_url, "asgi": asgi_url}


def _answer(response: httpx.Response) -> tuple[int, list[str], Any]:
    names = sorted(name for name in response.headers if name != "date")
    return response.status_code, names, response.json()


@pytest.mark.parametrize(
    ("path", "keyed", "attempts", "status", "error"),
    [
        ("/drop", False, 1, 502, "upstream_failed"),
        ("/drop", True, 2, 502, "upstream_failed"),
        ("/hang", False, 1, 504, "upstream_timeout"),
        ("/hang", True, 2, 504, "upstream_timeout"),
    ],
    ids=["dropped", "dropped-keyed", "timed-out", "timed-out-keyed"],
)
def test_a_post_the_upstream_may_have_read_is_repeated_only_with_a_key(
    routers: dict[str, str],
    dropper: _Dropper,
    path: str,
    keyed: bool,
    attempts: int,
    status: int,
    error: str,
) -> None:
    answers = {}
    for name, url in routers.items():
        headers = {"Idempotency-Key": f"key-{name}{path}"} if keyed else {}
        with httpx.Client(base_url=url, timeout=10.0) as client:
            # Leaves an idle kept-alive connection: the POST qualifies for the fast path.
            assert client.get("/regions/eu-west/warm").status_code == 200
            before = fast_counts(client)
            dropper.received.clear()
            response = client.post(f"/regions/eu-west{path}", content=b"{}", headers=headers)
            after = fast_counts(client)
        assert dropper.received == [(path, headers.get("Idempotency-Key"))] * attempts, name
        answers[name] = _answer(response)
        if name == "fast":  # answered there unless a retry was allowed: then ProxyApp's
            assert after["answered"] - before["answered"] == (0 if keyed else 1)
            assert after["resumed"] - before["resumed"] == (1 if keyed else 0)
    assert answers["fast"] == answers["asgi"]
    assert answers["fast"][0] == status
    assert answers["fast"][2]["error"] == error


def test_a_client_that_hangs_up_mid_body_sends_nothing_upstream(
    routers: dict[str, str], dropper: _Dropper
) -> None:
    url = routers["fast"]
    host, port = url.removeprefix("http://").split(":")
    with httpx.Client(base_url=url, timeout=10.0) as client:
        assert client.get("/regions/eu-west/warm").status_code == 200
        gone = metric(client, "router_requests_total", outcome="client_gone", region="eu-west")
        dropper.received.clear()
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /regions/eu-west/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
            )
        deadline = time.monotonic() + 10
        while (
            metric(client, "router_requests_total", outcome="client_gone", region="eu-west") <= gone
        ):
            assert time.monotonic() < deadline, "the abandoned POST was never counted"
            time.sleep(0.05)
        assert dropper.received == []
        assert client.get("/regions/eu-west/after").status_code == 200
