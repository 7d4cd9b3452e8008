"""A replica killed between the provider's charge and the sale: the payment is settled once.

Real processes: the simulated provider runs on its own (so it outlives the replica, as a card
processor does), replicas are uvicorn processes killed with SIGKILL mid-charge and restarted.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.processes import ServiceProcess
from harness.pg import free_port
from harness.procs import metric
from harness.tokens import TestIssuer
from tests.regional_api.factories import GOOD_CARD, ShowSeed, query, seed_show
from tests.support.poll import wait_until

pytestmark = pytest.mark.slow

TIMEOUT_S = 2  # the provider's timeout; the simulator answers well within it
LATENCY_MS = 1500
GUARD_S = 1  # seats stay held TIMEOUT_S + GUARD_S past the payment's opening
MARGIN_S = 0.5  # the reconciler settles a payment TIMEOUT_S + MARGIN_S past its opening
ROUND_S = 0.2  # the reconciler's interval


@pytest.fixture
def provider_url() -> Iterator[str]:
    """The simulated provider as a process of its own."""
    port = free_port()
    command = [sys.executable, "-m", "regional_api.payments.simulator"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--latency-ms", str(LATENCY_MS)],
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url + "/charges"))
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def replica_env(
    regional_dsn: str, issuer: TestIssuer, provider_url: str, tmp_path: Path
) -> dict[str, str]:
    """What a replica of this test is started with."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks))
    return {
        "REGIONAL_REGION": "eu-west",
        "REGIONAL_DATABASE_URL": regional_dsn,
        "REGIONAL_GLOBAL_API_URL": "http://127.0.0.1:9",
        "REGIONAL_JWKS_CACHE_FILE": str(jwks),
        "REGIONAL_PAYMENT_PROVIDER_URL": provider_url,
        "REGIONAL_PAYMENT_PROVIDER_TIMEOUT_SECONDS": str(TIMEOUT_S),
        "REGIONAL_PAYMENT_GUARD_SECONDS": str(GUARD_S),
        "REGIONAL_PAYMENT_RECONCILE_INTERVAL_SECONDS": str(ROUND_S),
        "REGIONAL_PAYMENT_RECONCILE_MARGIN_SECONDS": str(MARGIN_S),
    }


@contextlib.contextmanager
def replica(name: str, env: dict[str, str], log_dir: Path) -> Iterator[ServiceProcess]:
    """A regional_api process, ready; killed at the end."""
    process = ServiceProcess(name, "regional_api", free_port(), env, log_dir / f"{name}.log")
    process.start().wait_ready()
    try:
        yield process
    finally:
        process.kill()


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=1).status_code == 200
    return False


def ledger(provider_url: str) -> dict[str, Any]:
    """The provider's charges and refunds."""
    answer: dict[str, Any] = httpx.get(provider_url + "/charges").json()
    return answer


def hold(url: str, issuer: TestIssuer, show: ShowSeed, user: str, *labels: str) -> str:
    """Hold seats through a replica's API."""
    answer = httpx.post(
        f"{url}/shows/{show.show_id}/holds",
        json={"seat_ids": show.ids(*labels)},
        headers=issuer.headers(sub=user),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def pay(url: str, issuer: TestIssuer, rid: str, headers: dict[str, str]) -> httpx.Response:
    """Pay a reservation by card through a replica's API."""
    return httpx.post(
        f"{url}/reservations/{rid}/payments",
        json={"method": "card", "card_number": GOOD_CARD},
        headers=issuer.headers(sub="user-payer") | headers,
        timeout=30,
    )


def pay_and_crash(
    process: ServiceProcess,
    issuer: TestIssuer,
    provider_url: str,
    rid: str,
    headers: dict[str, str] | None = None,
) -> str:
    """Pay through `process` and SIGKILL it once the provider has taken the money."""

    def paying() -> None:
        with contextlib.suppress(httpx.HTTPError):
            pay(process.url, issuer, rid, headers or {})

    payer = threading.Thread(target=paying)
    payer.start()
    wait_until(lambda: len(ledger(provider_url)["charges"]) == 1)
    process.kill()
    payer.join(timeout=30)
    (reference,) = ledger(provider_url)["charges"]
    return str(reference)


def rounds(url: str) -> float:
    """The replica's reconciler rounds that ran to the end since it started."""
    with httpx.Client(base_url=url) as client:
        return metric(client, "regional_payments_reconcile_rounds_total", result="ok")


def payment(dsn: str, payment_id: str) -> tuple[str, str | None]:
    """A payment's status and failure reason."""
    rows = query(dsn, "SELECT status, failure_reason FROM payments WHERE id = %s", payment_id)
    return rows[0]


def test_a_charge_whose_replica_died_is_sold_once_after_restart(
    regional_dsn: str,
    issuer: TestIssuer,
    provider_url: str,
    replica_env: dict[str, str],
    tmp_path: Path,
) -> None:
    show = seed_show(regional_dsn)
    with replica("eu-west-a", replica_env, tmp_path) as process:
        rid = hold(process.url, issuer, show, "user-payer", "A1", "A2")
        pid = pay_and_crash(process, issuer, provider_url, rid)
        assert payment(regional_dsn, pid) == ("pending", None)
        seats = "SELECT status, reservation_id FROM show_seats WHERE seat_id = ANY(%s)"
        assert query(regional_dsn, seats, show.ids("A1", "A2")) == [("held", rid)] * 2

        process.start().wait_ready()
        wait_until(lambda: payment(regional_dsn, pid)[0] != "pending")
        assert payment(regional_dsn, pid) == ("completed", None)
        reconciled = httpx.get(process.url + "/metrics").text
        process.restart().wait_ready()  # a second reconciler round finds nothing to do
        wait_until(lambda: rounds(process.url) >= 3)

    assert 'regional_payments_reconciled_total{outcome="completed"} 1.0' in reconciled
    assert query(regional_dsn, "SELECT status FROM reservations WHERE id = %s", rid) == [
        ("confirmed",)
    ]
    codes = "SELECT count(ticket_code) FROM reservation_seats WHERE reservation_id = %s"
    assert query(regional_dsn, codes, rid) == [(2,)]
    assert query(regional_dsn, seats, show.ids("A1", "A2")) == [("sold", rid)] * 2
    assert payment(regional_dsn, pid) == ("completed", None)
    books = ledger(provider_url)
    assert (len(books["charges"]), books["refunded"]) == (1, [])


def test_a_charge_whose_seats_went_meanwhile_is_refunded_once(
    regional_dsn: str,
    issuer: TestIssuer,
    provider_url: str,
    replica_env: dict[str, str],
    tmp_path: Path,
) -> None:
    show = seed_show(regional_dsn)
    # Holds lapse after 10 s here. A second replica keeps selling while the first is down; it
    # reconciles only at its start.
    replica_env |= {"REGIONAL_HOLD_TTL_SECONDS": "10"}
    other_env = replica_env | {"REGIONAL_PAYMENT_RECONCILE_INTERVAL_SECONDS": "3600"}
    with (
        replica("eu-west-a", replica_env, tmp_path) as crashed,
        replica("eu-west-b", other_env, tmp_path) as other,
    ):
        rid = hold(crashed.url, issuer, show, "user-payer", "A1")
        pid = pay_and_crash(crashed, issuer, provider_url, rid)
        guard = "SELECT held_until < now() FROM show_seats WHERE seat_id = %s"
        wait_until(lambda: query(regional_dsn, guard, show.seats["A1"]) == [(True,)])
        taker = hold(other.url, issuer, show, "user-taker", "A1")

        crashed.start().wait_ready()
        wait_until(lambda: payment(regional_dsn, pid)[0] not in ("pending", "refunding"))
        crashed.restart().wait_ready()
        wait_until(lambda: rounds(crashed.url) >= 3)

    assert payment(regional_dsn, pid) == ("refunded", "hold_lapsed")
    seat = "SELECT status, reservation_id FROM show_seats WHERE seat_id = %s"
    assert query(regional_dsn, seat, show.seats["A1"]) == [("held", taker)]
    assert query(regional_dsn, "SELECT status FROM reservations WHERE id = %s", rid) != [
        ("confirmed",)
    ]
    books = ledger(provider_url)
    assert (len(books["charges"]), books["refunded"]) == (1, [pid])


def test_a_keyed_charge_whose_replica_died_replays_as_the_reconciler_settled_it(
    regional_dsn: str,
    issuer: TestIssuer,
    provider_url: str,
    replica_env: dict[str, str],
    tmp_path: Path,
) -> None:
    # The key names the payment, not a stored body: once the reconciler sold the seats, a retry
    # of the lost request is told so (201 and the tickets), and nothing is charged again.
    show = seed_show(regional_dsn)
    key = {"Idempotency-Key": "crashed-pay"}
    with replica("eu-west-a", replica_env, tmp_path) as process:
        rid = hold(process.url, issuer, show, "user-payer", "A1", "A2")
        pid = pay_and_crash(process, issuer, provider_url, rid, key)
        process.start().wait_ready()
        wait_until(lambda: payment(regional_dsn, pid)[0] != "pending")
        retried = pay(process.url, issuer, rid, key)

    assert payment(regional_dsn, pid) == ("completed", None)
    assert retried.status_code == 201, retried.text
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["payment"]["id"] == pid
    assert retried.json()["reservation_status"] == "confirmed"
    assert len(retried.json()["tickets"]) == 2
    books = ledger(provider_url)
    assert (len(books["charges"]), books["refunded"]) == (1, [])
