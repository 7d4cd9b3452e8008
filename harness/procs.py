"""Real processes for tests and benchmarks: uvicorn apps, echo upstreams, the router, a directory."""

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Receive, Scope, Send

from harness.pg import free_port
from harness.tls import TlsFiles
from router.proxy.protocol import SPEC as PROTOCOL_SPEC

ROOT = Path(__file__).resolve().parents[1]


def client_from(address: str, base_url: str | httpx.URL, **kwargs: Any) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.0.0.0/8 one)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=5.0, **kwargs)


@dataclass
class Proc:
    """One uvicorn process serving an app factory on a loopback port; killed by PID."""

    app: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    http: str = "httptools"  # uvicorn's --http: a protocol name or class
    forwarded_allow_ips: str = ""  # whose X-Forwarded-For uvicorn believes: nobody's
    tls: TlsFiles | None = None  # serve HTTPS with its server certificate, client certs required
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, wait_path: str | None = "/readyz") -> "Proc":
        """Spawn uvicorn (uvloop + httptools) and wait until `wait_path` answers 200."""
        command = [
            sys.executable, "-m", "uvicorn", "--factory", self.app,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--loop", "uvloop", "--http", self.http, "--no-access-log",
            "--forwarded-allow-ips", self.forwarded_allow_ips,
            *(self.tls.uvicorn_args() if self.tls else ()),
        ]  # fmt: skip
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait_path is not None:
            self.wait(wait_path)
        return self

    def wait(self, path: str, timeout: float = 20.0) -> None:
        """Wait until the process answers 200 on `path`."""
        verify = self.tls.client_context() if self.tls else True
        wait_answering(self.proc, self.url + path, self.app, timeout=timeout, verify=verify)

    @contextmanager
    def running(self, wait_path: str | None = "/readyz") -> Iterator[str]:
        """Start the process for the block and kill it afterwards; yield its base URL."""
        self.start(wait_path)
        try:
            yield self.url
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the process by PID: an abrupt crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def wait_answering(
    proc: subprocess.Popen[bytes] | None,
    url: str,
    name: str,
    *,
    timeout: float,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Wait until `url` answers 200, failing at once when `proc` (named `name`) has exited."""
    deadline = time.monotonic() + timeout
    # One client for every poll: `httpx.get` builds a TLS context each time (50 ms of CPU, taken
    # from the process starting on the same cores).
    with httpx.Client(timeout=1.0, verify=verify) as client:
        while time.monotonic() < deadline:
            if proc is None or proc.poll() is not None:
                code = proc.returncode if proc else None
                raise RuntimeError(f"{name} exited with {code}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.05)
    raise TimeoutError(f"{name} not ready on {url} after {timeout} s")


def upstream(name: str, region: str, write_log: Path) -> Proc:
    """An echo upstream standing in for one regional_api endpoint (not yet started)."""
    env = {"UPSTREAM_NAME": name, "UPSTREAM_REGION": region, "UPSTREAM_WRITE_LOG": str(write_log)}
    return Proc("harness.upstream_app:create_app", env)


def router(global_url: str, **settings: Any) -> Proc:
    """A router process configured through `ROUTER_*` variables (not yet started)."""
    env = {
        "ROUTER_GLOBAL_API_URL": global_url,
        "ROUTER_PROBE_INTERVAL_SECONDS": "0.1",
        "ROUTER_PROBE_TIMEOUT_SECONDS": "0.2",
        "ROUTER_MAP_REFRESH_SECONDS": "0.5",
        "ROUTER_MAP_MISS_REFRESH_MIN_SECONDS": "0",
        "ROUTER_ACCESS_LOG": "false",
    }
    env |= {f"ROUTER_{key.upper()}": str(value) for key, value in settings.items()}
    return Proc("router.main:create_app", env, http=PROTOCOL_SPEC)


def directory_map(
    version: str, regions: dict[str, list[str]], cinemas: dict[str, str]
) -> dict[str, Any]:
    """A `DirectoryMap` document: region code -> endpoint URLs, cinema id -> region."""
    return {
        "version": version,
        "regions": [
            {"code": code, "name": code, "currency": "EUR", "endpoints": urls}
            for code, urls in regions.items()
        ],
        "cinemas": [
            {"id": cid, "name": cid, "city": "Paris", "address": "", "timezone": "UTC", "region": r}
            for cid, r in cinemas.items()
        ],
    }


class FakeDirectory:
    """global_api stand-in: `/directory/map` with ETag, the JWKS, `/readyz`, an echo for the rest."""

    def __init__(self, document: dict[str, Any], jwks: dict[str, Any]) -> None:
        self.document = document
        self.jwks = jwks
        self.map_fetches = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        etag = f'"{self.document["version"]}"'
        if path == "/directory/map":
            self.map_fetches += 1
            if headers.get("if-none-match") == etag:
                await _answer(send, 304, None, [(b"etag", etag.encode())])
            else:
                await _answer(send, 200, self.document, [(b"etag", etag.encode())])
        elif path == "/.well-known/jwks.json":
            await _answer(send, 200, self.jwks)
        elif path == "/readyz":
            await _answer(send, 200, {"status": "ready"})
        else:
            echo = {
                "upstream": "global",
                "method": scope["method"],
                "path": path,
                "headers": headers,
            }
            await _answer(send, 200, echo)


async def _answer(
    send: Send, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = b"" if body is None else json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def wait_all_healthy(base: str, timeout: float = 10.0) -> None:
    """Wait until the router has every endpoint of every region in rotation."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base) as client:  # one TLS context for every poll
        while True:
            regions = client.get("/router/regions").json()["regions"]
            if all(region["state"] == "up" for region in regions):
                return
            assert time.monotonic() < deadline, regions
            time.sleep(0.05)


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """A service's sample `name` with exactly these labels, from its `/metrics` (0 when absent)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
