"""A slow payment provider holds no lock and no pooled connection while it decides."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness.live import live_server
from harness.ports import dead_url
from harness.tokens import TestIssuer
from regional_api.config import RegionalSettings
from regional_api.main import create_app
from regional_api.payments.provider import SimulatedProvider
from regional_api.payments.remote import HttpProvider
from schemas.auth import Role
from tests.regional_api.factories import GOOD_CARD, ShowSeed, query, seed_show
from tests.support.poll import wait_until

LATENCY = 2.0


@pytest.fixture
def served(regional_dsn: str, issuer: TestIssuer) -> Iterator[tuple[str, SimulatedProvider]]:
    """A replica with ONE pooled connection and a provider that answers after 2 s."""
    settings = RegionalSettings(
        region="eu-west",
        database_url=regional_dsn,
        global_api_url="http://127.0.0.1:9",
        db_pool_size=1,
    )
    app = create_app(settings, jwks=issuer.jwks)
    provider = SimulatedProvider(timeout_seconds=30, latency_seconds=LATENCY)
    app.state.payment_provider = provider
    with live_server(app) as url:
        yield url, provider


def _hold(url: str, issuer: TestIssuer, show: ShowSeed, user: str, label: str) -> str:
    headers = issuer.headers(sub=user)
    answer = httpx.post(
        f"{url}/shows/{show.show_id}/holds", json={"seat_ids": show.ids(label)}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _pay(url: str, issuer: TestIssuer, user: str, rid: str) -> int:
    body = {"method": "card", "card_number": GOOD_CARD}
    answer = httpx.post(
        f"{url}/reservations/{rid}/payments",
        json=body,
        headers=issuer.headers(sub=user),
        timeout=30,
    )
    return answer.status_code


def test_holds_and_payments_of_others_go_on_while_a_slow_charge_is_in_flight(
    served: tuple[str, SimulatedProvider], regional_dsn: str, issuer: TestIssuer
) -> None:
    url, provider = served
    show = seed_show(regional_dsn)
    payers = {
        f"user-pay-{n}": _hold(url, issuer, show, f"user-pay-{n}", label)
        for n, label in enumerate(("A1", "A2", "A3"))
    }

    with ThreadPoolExecutor(max_workers=3) as pool:
        paying = [pool.submit(_pay, url, issuer, user, rid) for user, rid in payers.items()]
        # All three charges are at the provider at once: none waits for another's connection.
        wait_until(lambda: provider.in_flight == 3)
        # With the one pooled connection, other customers' holds still go through meanwhile.
        _hold(url, issuer, show, "user-other-1", "A4")
        _hold(url, issuer, show, "user-other-2", "B1")
        still_in_flight = provider.in_flight
        statuses = [future.result() for future in paying]

    assert still_in_flight == 3, "the holds waited for the charges"
    assert statuses == [201, 201, 201]
    assert provider.max_in_flight == 3


def test_an_unreachable_provider_leaves_the_payment_pending_not_failed(
    regional_dsn: str, issuer: TestIssuer
) -> None:
    settings = RegionalSettings(
        region="eu-west", database_url=regional_dsn, global_api_url="http://127.0.0.1:9"
    )
    app = create_app(settings, jwks=issuer.jwks)
    show = seed_show(regional_dsn)
    with dead_url() as nowhere:
        # Nothing listens there: whether the charge happened is unknown, so nothing is decided.
        app.state.payment_provider = HttpProvider(nowhere, timeout_seconds=2)
        with live_server(app) as url:
            rid = _hold(url, issuer, show, "user-unreachable", "A1")
            answer = httpx.post(
                f"{url}/reservations/{rid}/payments",
                json={"method": "card", "card_number": GOOD_CARD},
                headers=issuer.headers(sub="user-unreachable"),
            )
    assert answer.status_code == 202, answer.text
    assert answer.json()["payment"]["status"] == "pending"
    seat = "SELECT status, reservation_id FROM show_seats WHERE seat_id = %s"
    assert query(regional_dsn, seat, show.seats["A1"]) == [("held", rid)]


def test_counter_sales_hold_no_connection_while_the_charge_is_in_flight(
    served: tuple[str, SimulatedProvider], regional_dsn: str, issuer: TestIssuer
) -> None:
    url, provider = served
    show = seed_show(regional_dsn)
    clerk = issuer.headers(sub="user-clerk", role=Role.staff, cinemas=(show.cinema_id,))

    def sell(label: str) -> int:
        body = {"seat_ids": show.ids(label), "method": "card", "card_number": GOOD_CARD}
        answer = httpx.post(
            f"{url}/shows/{show.show_id}/sales", json=body, headers=clerk, timeout=30
        )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        selling = [pool.submit(sell, label) for label in ("A1", "A2")]
        # Both charges are at the provider at once, with the replica's one pooled connection.
        wait_until(lambda: provider.in_flight == 2)
        _hold(url, issuer, show, "user-other", "A3")
        still_in_flight = provider.in_flight
        statuses = [future.result() for future in selling]

    assert still_in_flight == 2, "the hold waited for the sales' charges"
    assert statuses == [201, 201]


def test_a_charge_at_the_provider_lends_its_admission_slot(
    regional_dsn: str, issuer: TestIssuer
) -> None:
    """With one request in flight allowed, three charges wait at the provider at once, and a
    hold and a show read are served meanwhile: a slot is CPU, not a wait on another system."""
    settings = RegionalSettings(
        region="eu-west",
        database_url=regional_dsn,
        global_api_url="http://127.0.0.1:9",
        max_in_flight=1,
        max_queued=8,
    )
    app = create_app(settings, jwks=issuer.jwks)
    provider = SimulatedProvider(timeout_seconds=30, latency_seconds=LATENCY)
    app.state.payment_provider = provider
    show = seed_show(regional_dsn)
    with live_server(app) as url, ThreadPoolExecutor(max_workers=3) as pool:
        payers = {
            f"user-lend-{n}": _hold(url, issuer, show, f"user-lend-{n}", label)
            for n, label in enumerate(("A1", "A2", "A3"))
        }
        paying = [pool.submit(_pay, url, issuer, user, rid) for user, rid in payers.items()]
        wait_until(lambda: provider.in_flight == 3)
        _hold(url, issuer, show, "user-lend-other", "A4")
        assert httpx.get(f"{url}/shows/{show.show_id}").status_code == 200
        still_in_flight = provider.in_flight
        statuses = [future.result() for future in paying]
        metrics = httpx.get(f"{url}/metrics").text
    assert still_in_flight == 3, "the hold and the read waited for the charges"
    assert statuses == [201, 201, 201]
    # Every slot came back: nothing is left in flight, nothing waits.
    assert 'http_requests_in_flight{service="regional_api"} 0.0' in metrics
