"""Router overhead: the same upstream reached directly, through the router and through nginx.

Two upstreams, each measured direct / routed / through nginx in the same run: a real regional
endpoint (`GET /shows/{id}` on one regional_api worker with its own durable PostgreSQL), and a
no-op echo app (the worst case for the ratio: nothing but the proxy's own cost).

Run: `.venv/bin/python -m benchmarks.router [--seconds 10]`. Needs `wrk` (falls back to an
aiohttp load generator) and uses `nginx` when installed. Prints a table and, with `--write`,
rewrites `docs/benchmarks/router.md`. `--ab` instead measures the router's server protocols
side by side in front of the echo app (under a minute; the fast path's decision in that doc).
"""

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.holds import ROOT as REPO_ROOT
from benchmarks.holds import seed, start_api
from common.migrate import upgrade
from harness.pg import create_database, free_port, start_server
from harness.procs import Proc, directory_map, router, upstream
from harness.tokens import TestIssuer
from router.proxy.protocol import SPEC as PROTOCOL_SPEC

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "router.md"

NGINX_CONF = """
worker_processes 1;
daemon off;
master_process off;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream app {{ server 127.0.0.1:{upstream}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@dataclass
class Result:
    """One load run."""

    upstream: str  # regional | echo
    target: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    proxy_cpu_us: float | None  # CPU time of the proxy process per request


def _ms(text: str) -> float:
    value, unit = float(re.sub(r"[a-z]+$", "", text)), re.sub(r"^[\d.]+", "", text)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str, connections: int, seconds: int, script: Path | None = None
) -> tuple[float, float, float]:
    """Requests per second, p50 and p99 in ms, measured by wrk (its Lua `script` if given)."""
    scripted = ["-s", str(script)] if script else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *scripted, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return rps, p50, p99


def run_aiohttp(url: str, connections: int, seconds: int) -> tuple[float, float, float]:
    """The same figures from an aiohttp load generator (when wrk is missing)."""
    import aiohttp

    async def load() -> list[float]:
        latencies: list[float] = []
        stop = time.monotonic() + seconds
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    async with session.get(url) as response:
                        await response.read()
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(connections)))
        return latencies

    latencies = sorted(asyncio.run(load()))
    q = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, q[49] * 1000, q[98] * 1000


@contextlib.contextmanager
def nginx(upstream_port: int) -> Iterator[tuple[str, int] | None]:
    """nginx proxy_pass in front of the upstream, or None when nginx is not installed."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as prefix:
        port = free_port()
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, upstream=upstream_port, port=port))
        proc = subprocess.Popen([binary, "-c", str(conf), "-p", prefix], stderr=subprocess.DEVNULL)
        try:
            _wait(f"http://127.0.0.1:{port}/readyz")
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait(url: str) -> None:
    for _ in range(200):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(url)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The router's server for --ab: what uvicorn's `--http` gets.
SERVERS = {
    "router": PROTOCOL_SPEC,  # fast path and front-door bounds (as deployed)
    "router-asgi": "router.proxy.bounds:BoundedProtocol",  # bounds, every request on ASGI
    "router-stock": "httptools",  # uvicorn's own protocol: public interfaces only, no bounds
}

ROUNDS = 5  # windows per target, interleaved: the VM's drift hits every target alike
PAIRED_ROUNDS = 3000  # one request to each target per round


@dataclass
class Paired:
    """One-connection latency of a target from requests alternated with the other targets'."""

    upstream: str
    target: str
    p50_ms: float
    p99_ms: float
    added_ms: float  # median over rounds of (this target's time - direct's time)


class _KeepAlive:
    """A blocking keep-alive connection sending one GET at a time (reconnects when closed)."""

    def __init__(self, url: str) -> None:
        hostport, _, path = url.removeprefix("http://").partition("/")
        host, port = hostport.rsplit(":", 1)
        self.address = (host, int(port))
        self.request = f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n\r\n".encode()
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def get(self) -> float:
        """Seconds from sending the request to the last byte of its answer."""
        started = time.perf_counter()
        self.sock.sendall(self.request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:  # the server closed a kept-alive connection (nginx: 1,000 requests)
                self.sock.close()
                self.sock = self._connect()
                return self.get()
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += self.sock.recv(65536)
        return time.perf_counter() - started


def paired(upstream_name: str, urls: dict[str, str], rounds: int) -> list[Paired]:
    """Alternate single GETs across the targets; `direct` (the first) is the reference.

    Windows of wrk taken one after another drift by more than the router adds at one connection
    on this VM; here every round sends one request to each target in turn, so the machine's
    state is shared, and the added latency is the median of the per-round differences.
    """
    connections = {name: _KeepAlive(url) for name, url in urls.items()}
    for _ in range(200):  # warm-up: connections, upstream pools, caches
        for connection in connections.values():
            connection.get()
    times: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, connection in connections.items():
            times[name].append(connection.get() * 1000)
    for connection in connections.values():
        connection.sock.close()
    direct = times["direct"]
    results = []
    for name, samples in times.items():
        q = statistics.quantiles(samples, n=100)
        added = statistics.median(a - b for a, b in zip(samples, direct, strict=True))
        results.append(Paired(upstream_name, name, q[49], q[98], added))
        print(f"  {upstream_name:8} {name:7} c=1 paired  p50 {q[49]:.3f} ms  added {added:+.3f} ms")
    return results


def measure(
    upstream_name: str,
    targets: dict[str, tuple[str, int | None]],
    seconds: int,
    *,
    rounds: int = ROUNDS,
    loads: tuple[int, ...] = (64, 1),
    script: Path | None = None,
) -> list[Result]:
    """Warm each target up, then load it at 64 connections and at 1, in interleaved windows.

    Each target gets ROUNDS windows of seconds / ROUNDS (at least 2 s), taken in turn (direct, router, nginx,
    direct, ...), so a slow spell of the machine lands on all of them; the figures are the
    medians of the windows' rates and percentiles.
    """
    load = run_wrk if shutil.which("wrk") else run_aiohttp
    if script is not None:  # requests other than a plain GET: wrk only
        load = functools.partial(run_wrk, script=script)
    window = max(2, round(seconds / rounds))  # wrk needs ~2 s to settle at one connection
    results = []
    for connections in loads:
        runs: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in targets}
        for url, _ in targets.values():
            load(url, connections, 2)
        for _ in range(rounds):
            for name, (url, pid) in targets.items():
                cpu_before = cpu_seconds(pid) if pid else 0.0
                rps, p50, p99 = load(url, connections, window)
                cpu = cpu_seconds(pid) - cpu_before if pid else 0.0
                runs[name].append((rps, p50, p99, cpu))
        for name, (_, pid) in targets.items():
            rps = statistics.median(r[0] for r in runs[name])
            p50 = statistics.median(r[1] for r in runs[name])
            p99 = statistics.median(r[2] for r in runs[name])
            served = sum(r[0] for r in runs[name]) * window
            cpu_us = sum(r[3] for r in runs[name]) / served * 1e6 if pid else None
            results.append(Result(upstream_name, name, connections, rps, p50, p99, cpu_us))
            print(
                f"  {upstream_name:8} {name:7} c={connections:<3} {rps:9.0f} req/s"
                f"  p50 {p50:.3f} ms  p99 {p99:.3f} ms"
            )
    return results


def paired_table(results: list[Paired]) -> str:
    """A markdown table of the alternated one-connection figures."""
    lines = [
        "| upstream | target | p50 ms | p99 ms | added p50 ms (median of paired differences) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.upstream} | {r.target} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.added_ms:+.3f} |"
        for r in results
    ]
    return "\n".join(lines)


def table(results: list[Result]) -> str:
    """A markdown table with throughput ratio and added p50 against direct."""
    lines = [
        "| upstream | target | connections | req/s | vs direct | p50 ms | added p50 ms | p99 ms "
        "| proxy CPU µs/req |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    direct = {(r.upstream, r.connections): r for r in results if r.target == "direct"}
    for r in results:
        base = direct[r.upstream, r.connections]
        lines.append(
            f"| {r.upstream} | {r.target} | {r.connections} | {r.rps:.0f} | {r.rps / base.rps:.0%} "
            f"| {r.p50_ms:.3f} | {r.p50_ms - base.p50_ms:+.3f} | {r.p99_ms:.3f} "
            f"| {'-' if r.proxy_cpu_us is None else f'{r.proxy_cpu_us:.0f}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Start upstream, router and nginx; measure; print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOC.relative_to(ROOT)}")
    parser.add_argument("--access-log", action="store_true", help="router logs every request")
    parser.add_argument(
        "--rounds", type=int, default=PAIRED_ROUNDS, help="alternated one-connection rounds"
    )
    parser.add_argument("--ab", action="store_true", help="compare the router's server protocols")
    args = parser.parse_args()
    if args.ab:
        results, alternated = run_ab(args.seconds, paired_rounds=args.rounds)
        print(table(results))
        print(paired_table(alternated))
        return
    results, alternated = run(args.seconds, access_log=args.access_log, paired_rounds=args.rounds)
    print(table(results))
    print(paired_table(alternated))
    if args.write:
        write_doc(results, alternated, args)


@contextlib.contextmanager
def regional_endpoint(workdir: Path) -> Iterator[tuple[str, str]]:
    """One regional_api worker on its own durable PostgreSQL, seeded: its URL and a show id."""
    server = start_server("bench-router", durable=True)
    try:
        dsn = create_database(server.admin_dsn, "router", drop_existing=True)
        upgrade(REPO_ROOT / "regional_api" / "migrations", dsn)
        spread, _ = seed(dsn)
        api = start_api(dsn, TestIssuer(kid="bench-router"), workdir)
        try:
            yield api.url, spread.show_ids[0]
        finally:
            api.stop()
    finally:
        server.stop()


def run(
    seconds: int, *, access_log: bool = False, paired_rounds: int = PAIRED_ROUNDS
) -> tuple[list[Result], list[Paired]]:
    """Start both upstreams, the router and nginx, and measure each (also used by the suite)."""
    with tempfile.TemporaryDirectory() as tmp, regional_endpoint(Path(tmp)) as (api, show_id):
        echo = upstream("bench", "us-east", Path(tmp) / "writes.log")
        static = Path(tmp) / "map.json"
        regions = {"eu-west": [api], "us-east": [echo.url]}
        static.write_text(json.dumps(directory_map("bench", regions, {})))
        proxy = router(
            f"http://127.0.0.1:{free_port()}",  # no directory: the static map is used
            static_config_file=static,
            rate_limit_enabled="false",
            access_log=str(access_log).lower(),
            probe_interval_seconds=1,
            map_refresh_seconds=3600,
        )
        proxy.log = Path(tmp) / "router.log"
        started: list[Proc] = []
        try:
            started += [echo.start(), proxy.start()]
            assert proxy.proc is not None
            upstreams = {
                "regional": (api, f"/shows/{show_id}", f"/shows/{show_id}"),
                "echo": (echo.url, "/echo", "/regions/us-east/echo"),
            }
            results: list[Result] = []
            alternated: list[Paired] = []
            for name, (base, path, routed) in upstreams.items():
                with nginx(int(base.rsplit(":", 1)[1])) as front:
                    targets: dict[str, tuple[str, int | None]] = {
                        "direct": (base + path, None),
                        "router": (proxy.url + routed, proxy.proc.pid),
                    }
                    if front:
                        targets["nginx"] = (front[0] + path, front[1])
                    results += measure(name, targets, seconds)
                    urls = {target: url for target, (url, _) in targets.items()}
                    alternated += paired(name, urls, paired_rounds)
            return results, alternated
        finally:
            for proc in started:
                proc.kill()


def run_ab(seconds: int, *, paired_rounds: int) -> tuple[list[Result], list[Paired]]:
    """The echo app direct and through one router per `SERVERS` entry, in the same minute.

    64 connections in interleaved windows (CPU per request from /proc), then one connection
    with single GETs alternated across all targets.
    """
    with tempfile.TemporaryDirectory() as tmp:
        echo = upstream("bench", "us-east", Path(tmp) / "writes.log")
        static = Path(tmp) / "map.json"
        static.write_text(json.dumps(directory_map("bench", {"us-east": [echo.url]}, {})))
        proxies = {}
        for name, http in SERVERS.items():
            proxy = router(
                f"http://127.0.0.1:{free_port()}",  # no directory: the static map is used
                static_config_file=static,
                rate_limit_enabled="false",
                probe_interval_seconds=1,
                map_refresh_seconds=3600,
            )
            proxy.http = http
            proxies[name] = proxy
        started = [echo]
        try:
            echo.start()
            for proxy in proxies.values():
                started.append(proxy.start())
            targets: dict[str, tuple[str, int | None]] = {"direct": (echo.url + "/echo", None)}
            for name, proxy in proxies.items():
                assert proxy.proc is not None
                targets[name] = (proxy.url + "/regions/us-east/echo", proxy.proc.pid)
            results = measure("echo", targets, seconds, rounds=3, loads=(64,))
            urls = {target: url for target, (url, _) in targets.items()}
            return results, paired("echo", urls, paired_rounds)
        finally:
            for proc in started:
                proc.kill()


def write_doc(results: list[Result], alternated: list[Paired], args: argparse.Namespace) -> None:
    """Replace the figures section of the benchmark document."""
    load = os.getloadavg()[0]
    figures = (
        f"<!-- figures -->\nMeasured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{args.seconds} s per run, {os.cpu_count()} cores, load average {load:.1f} before the run, "
        f"router access log {'on' if args.access_log else 'off'}.\n\n{table(results)}\n\n"
        f"One connection, single GETs alternated across the targets ({args.rounds} rounds):\n\n"
        f"{paired_table(alternated)}\n<!-- /figures -->"
    )
    text = DOC.read_text() if DOC.exists() else "<!-- figures -->\n<!-- /figures -->\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(
        re.sub(r"<!-- figures -->.*<!-- /figures -->", lambda _: figures, text, flags=re.S)
    )


if __name__ == "__main__":
    main()
