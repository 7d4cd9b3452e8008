"""Router to region over TLS: verified against the configured CA, with a client certificate.

One echo upstream serves HTTPS with a throwaway CA's certificate for 127.0.0.1 and requires a
client certificate (uvicorn --ssl-cert-reqs 2), as `make up ARGS=--tls` runs the replicas.
Three routers reach it: one configured right, one trusting another CA, one without the client
certificate. Only the first gets through; the others answer a 5xx error body, never a 500.
"""

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.live import live_server
from harness.procs import (
    FakeDirectory,
    Proc,
    directory_map,
    metric,
    router,
    upstream,
    wait_all_healthy,
)
from harness.tls import TlsFiles, make_throwaway_ca
from harness.tokens import TestIssuer


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The CA the upstream's certificate comes from."""
    return make_throwaway_ca(tmp_path_factory.mktemp("tls-ca"))


@pytest.fixture(scope="module")
def tls_directory(
    ca: TlsFiles, issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A directory whose one region has one endpoint, an https:// echo upstream."""
    proc = upstream("tls", "eu-west", tmp_path_factory.mktemp("tls") / "writes.log")
    proc.tls = ca
    proc.start()
    document = directory_map("v1", {"eu-west": [proc.url]}, {})
    try:
        with live_server(FakeDirectory(document, issuer.jwks)) as url:
            yield url
    finally:
        proc.kill()


@contextlib.contextmanager
def _router(directory: str, env: dict[str, str]) -> Iterator[str]:
    settings = {key.removeprefix("ROUTER_").lower(): value for key, value in env.items()}
    with router(directory, **settings).running() as url:
        yield url


@pytest.fixture(scope="module")
def trusting(tls_directory: str, ca: TlsFiles) -> Iterator[str]:
    """A router that trusts the CA and presents the client certificate."""
    with _router(tls_directory, ca.router_env()) as url:
        yield url


def test_https_upstream_answers_on_both_paths(trusting: str) -> None:
    wait_all_healthy(trusting)
    with httpx.Client(base_url=trusting, timeout=5.0) as client:
        before = metric(client, "router_fast_path_requests_total", result="answered")
        for n in range(10):
            response = client.get(f"/regions/eu-west/items/{n}")
            assert response.status_code == 200, response.text
            assert response.json()["path"] == f"/items/{n}"
        posted = client.post("/regions/eu-west/movies", json={"n": 1})
        assert posted.status_code == 200, posted.text
        assert posted.json()["method"] == "POST"
        # After the first GET an idle TLS connection is kept: the GETs after it go fast.
        after = metric(client, "router_fast_path_requests_total", result="answered")
        assert after - before >= 9


def _refused(base: str) -> None:
    with httpx.Client(base_url=base, timeout=5.0) as client:
        for response in (client.get("/regions/eu-west/x"), client.post("/regions/eu-west/x")):
            assert response.status_code in (502, 503), response.text
            assert response.json()["error"] in ("region_unavailable", "upstream_failed")
        regions = client.get("/router/regions").json()["regions"]
        assert [region["state"] for region in regions] != ["up"]


def test_an_upstream_signed_by_another_ca_is_refused(
    tls_directory: str, ca: TlsFiles, tmp_path: Path
) -> None:
    other = make_throwaway_ca(tmp_path / "other", name="someone else's CA")
    # The right client certificate, but the upstream's certificate cannot be verified.
    with _router(
        tls_directory, ca.router_env() | {"ROUTER_UPSTREAM_CA_FILE": str(other.ca)}
    ) as url:
        _refused(url)


def test_a_router_without_the_client_certificate_is_refused(
    tls_directory: str, ca: TlsFiles
) -> None:
    with _router(tls_directory, {"ROUTER_UPSTREAM_CA_FILE": str(ca.ca)}) as url:
        _refused(url)


def test_a_certificate_for_another_host_name_is_refused(issuer: TestIssuer, tmp_path: Path) -> None:
    named = make_throwaway_ca(tmp_path / "named", hosts=("localhost",))  # not 127.0.0.1
    proc = upstream("named", "eu-west", tmp_path / "writes.log")
    proc.tls = named
    proc.start(wait_path=None)
    try:
        _wait_serving(proc, named)
        document = directory_map("v1", {"eu-west": [proc.url]}, {})
        with (
            live_server(FakeDirectory(document, issuer.jwks)) as directory,
            _router(directory, named.router_env()) as url,
        ):
            _refused(url)
    finally:
        proc.kill()


def _wait_serving(proc: Proc, files: TlsFiles) -> None:
    """Wait until `proc` answers over TLS, its name not checked: only the name is wrong."""
    context = files.client_context()
    context.check_hostname = False
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(proc.url + "/readyz", verify=context, timeout=1).status_code == 200:
                return
        assert time.monotonic() < deadline, "upstream did not start"
        time.sleep(0.05)
