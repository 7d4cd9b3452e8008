"""The router's memory and service under the issue-16 attacks, at the issue's sizes.

Starts two echo upstreams, a fake directory and a router with its default bounds, then runs each
attack in turn for a bounded time while a normal customer sends a GET every 50 ms. Prints, per
attack: the router's peak RSS, its CPU seconds, the customer's statuses and latencies, and how
many attacking connections the router closed. Attackers connect from 127.0.0.10-29 (loopback,
not trusted proxies), as many addresses would.

Run: `.venv/bin/python -m benchmarks.front_door` (about a minute; docs/reliability.md).
"""

import contextlib
import os
import select
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.attacks import address, close_all, pipelined
from harness.live import live_server
from harness.procs import FakeDirectory, Proc, directory_map, router, upstream
from harness.procs import wait_all_healthy as wait_healthy
from harness.tokens import TestIssuer

ATTACKERS = [f"127.0.0.{n}" for n in range(10, 30)]


@dataclass
class Customer:
    """A normal client: one GET every 50 ms on a kept-alive connection, while `running`."""

    url: str
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Send until stopped."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while self.running.is_set():
                started = time.perf_counter()
                try:
                    status = client.get("/regions/eu-west/x").status_code
                except httpx.HTTPError:
                    status = 0
                self.latencies.append(time.perf_counter() - started)
                self.statuses.append(status)
                time.sleep(0.05)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect(url: str, n: int) -> socket.socket:
    """The n-th attacking connection, from one of the attacker addresses, small window."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((ATTACKERS[n % len(ATTACKERS)], 0))
    sock.connect(address(url))
    return sock


def closed(socks: list[socket.socket]) -> int:
    """How many of `socks` the peer has closed (read to EOF or reset)."""
    count = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            while select.select([sock], [], [], 0)[0]:
                if not sock.recv(1 << 20):
                    count += 1
                    break
        except OSError:
            count += 1
    return count


def slow_readers(url: str) -> list[socket.socket]:
    """64 connections, each pipelining 30 GETs of a 115 KB answer, never reading."""
    socks = [connect(url, n) for n in range(64)]
    for sock in socks:
        sock.sendall(pipelined("/regions/us-east/blob?n=115000", 30))
    return socks


def slowloris(url: str, seconds: float) -> list[socket.socket]:
    """500 unfinished headers and 300 bodies, one byte per second each."""
    heads = [connect(url, n) for n in range(500)]
    posts = [connect(url, n) for n in range(300)]
    for sock in heads:
        sock.sendall(b"GET /regions/eu-west/x HTTP/1.1\r\nHost: x\r\n")
    for sock in posts:
        sock.sendall(b"POST /regions/eu-west/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for sock in heads + posts:
            with contextlib.suppress(OSError):
                sock.send(b"a")
        time.sleep(1)
    return heads + posts


def huge_headers(url: str) -> list[socket.socket]:
    """20 headers of 16 MB and one of 32 MB, in 4 KB writes."""
    socks = [connect(url, n) for n in range(21)]
    piece = b"a" * 4096

    def send(sock: socket.socket, size: int) -> None:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /regions/eu-west/x HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(size // len(piece)):
                sock.sendall(piece)

    threads = [
        threading.Thread(target=send, args=(sock, (32 if n == 0 else 16) << 20))
        for n, sock in enumerate(socks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return socks


def pipeline_flood(url: str) -> list[socket.socket]:
    """30 connections, each sending 13,797 tiny pipelined GETs without reading."""
    socks = [connect(url, n) for n in range(30)]
    data = pipelined("/regions/eu-west/x", 13_797)

    def send(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.sendall(data)

    threads = [threading.Thread(target=send, args=(sock,)) for sock in socks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return socks


def hang_ups(url: str) -> list[socket.socket]:
    """200 connections pipelining five GETs, then hanging up at once."""
    for n in range(200):
        sock = connect(url, n)
        sock.sendall(pipelined("/regions/eu-west/slow?s=0.05", 5))
        time.sleep(0.01)
        sock.close()
    return []


def measure(name: str, proc: Proc, attack: Callable[[], list[socket.socket]], hold: float) -> str:
    """Run one attack with the customer and an RSS sampler going; one table row."""
    assert proc.proc is not None
    pid = proc.proc.pid
    customer = Customer(proc.url)
    customer.running.set()
    peak = [rss_mb(pid)]
    cpu = cpu_seconds(pid)

    def sampler() -> None:
        while customer.running.is_set():
            peak.append(rss_mb(pid))
            time.sleep(0.05)

    threads = [threading.Thread(target=customer.run), threading.Thread(target=sampler)]
    for thread in threads:
        thread.start()
    socks = attack()
    time.sleep(hold)
    shut = closed(socks)
    customer.running.clear()
    for thread in threads:
        thread.join()
    close_all(socks)
    ok = sum(1 for s in customer.statuses if s == 200)
    lat = sorted(customer.latencies)
    p50 = statistics.median(lat) * 1000
    return (
        f"| {name} | {peak[0]:.0f} | {max(peak):.0f} | {cpu_seconds(pid) - cpu:.1f} | "
        f"{ok}/{len(customer.statuses)} | {p50:.1f} / {lat[-1] * 1000:.0f} | "
        f"{shut}/{len(socks)} |"
    )


@contextlib.contextmanager
def stack(workdir: Path) -> Iterator[Proc]:
    """Two echo upstreams, a fake directory and a router with its default bounds."""
    log = workdir / "writes.log"
    ups = [upstream("a", "eu-west", log), upstream("c", "us-east", log)]
    for proc in ups:
        proc.start()
    document = directory_map("v1", {"eu-west": [ups[0].url], "us-east": [ups[1].url]}, {})
    try:
        with live_server(FakeDirectory(document, TestIssuer().jwks)) as directory:
            proc = router(directory)
            proc.log = workdir / "router.log"
            proc.start()
            try:
                wait_healthy(proc.url)
                yield proc
            finally:
                proc.kill()
    finally:
        for proc in ups:
            proc.kill()


def main() -> None:
    """Run every attack and print the table."""
    with tempfile.TemporaryDirectory() as tmp, stack(Path(tmp)) as proc:
        rows = [
            measure("0. none (baseline)", proc, list, 3),
            measure("1. 64 x 30 pipelined 115 KB GETs, never read", proc, lambda: slow_readers(proc.url), 15),
            measure("2. 500 unfinished headers + 300 bodies at 1 B/s", proc, lambda: slowloris(proc.url, 12), 1),
            measure("3. 20 x 16 MB + 1 x 32 MB headers in 4 KB writes", proc, lambda: huge_headers(proc.url), 1),
            measure("4. 30 x 13,797 pipelined GETs, never read", proc, lambda: pipeline_flood(proc.url), 6),
            measure("5. 200 x 5 pipelined GETs, then hang up", proc, lambda: hang_ups(proc.url), 1),
        ]  # fmt: skip
        errors = sum('"level": "error"' in line for line in (Path(tmp) / "router.log").open())
        with httpx.Client(base_url=proc.url) as client:
            metrics = [
                line
                for line in client.get("/metrics").text.splitlines()
                if line.startswith(("router_connections_closed_total", "router_requests_total"))
            ]
    print("| attack | RSS before (MB) | peak RSS (MB) | router CPU (s) | customer 200s |"
          " customer p50 / max (ms) | attack connections closed by the router |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nERROR log lines: {errors}")
    print("\n".join(metrics))


if __name__ == "__main__":
    main()
