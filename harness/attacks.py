"""Hostile clients on raw sockets, for the front-door tests and `benchmarks.front_door`."""

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import httpx

from harness.procs import metric


def address(url: str) -> tuple[str, int]:
    """Host and port of a base URL."""
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def connect(url: str, *, source: str = "127.0.0.1", rcvbuf: int | None = None) -> socket.socket:
    """A TCP connection to `url` from the loopback address `source` (a small window if `rcvbuf`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.connect(address(url))
    return sock


def pipelined(path: str, n: int) -> bytes:
    """`n` GETs of `path` in one write."""
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * n


def closed_by_peer(sock: socket.socket, timeout: float) -> bytes | None:
    """Everything the peer sent until it closed, or None if it is still open after `timeout`."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk
    return None


def dribble(sock: socket.socket, data: bytes, every: float, stop: threading.Event) -> None:
    """Send `data` one byte at a time until it is sent, the peer closes or `stop` is set."""
    for byte in data:
        if stop.wait(every):
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return


def flood(sock: socket.socket, data: bytes, piece: int) -> None:
    """Send `data` in writes of `piece` bytes until it is sent or the peer closes."""
    for start in range(0, len(data), piece):
        try:
            sock.sendall(data[start : start + piece])
        except OSError:
            return


def wait_for(condition: Callable[[], bool], timeout: float, message: str) -> None:
    """Poll `condition` until it holds; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def sample(url: str, name: str, **labels: str) -> float:
    """One metric sample of the router at `url`, over a fresh connection."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        return metric(client, name, **labels)


def status_of(url: str, path: str) -> int:
    """A normal customer's GET over a fresh connection: its status."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        return client.get(path).status_code


def close_all(socks: list[socket.socket]) -> None:
    """Close the attacker's sockets."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()
