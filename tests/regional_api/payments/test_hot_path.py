"""What keeps a payment's app CPU down, and what it must keep: one task, no parsed parameters."""

import asyncio
import logging
from dataclasses import dataclass, field

import pytest
from fastapi.routing import APIRoute
from starlette.datastructures import URL
from starlette.requests import HTTPConnection

from regional_api.payments import router as payments
from regional_api.payments.provider import (
    CARD_DECLINED,
    CARD_TIMEOUT,
    ProviderResult,
    ProviderStatus,
    SimulatedProvider,
    charge_with_timeout,
)
from tests.regional_api.factories import GOOD_CARD, ShowSeed, hold
from tests.regional_api.served import Live
from tests.support.resolutions import counted_resolutions

USER = "user-alice"


def test_the_payment_context_parses_no_declared_parameter() -> None:
    """Its reservation id and Idempotency-Key are read from the request, not parsed per request."""
    (route,) = [
        route
        for route in payments.router.routes
        if isinstance(route, APIRoute)
        and route.path == "/reservations/{reservation_id}/payments"
        and "POST" in (route.methods or ())
    ]
    (context,) = route.dependant.dependencies
    assert (context.path_params, context.header_params) == ([], [])
    assert route.dependant.path_params == []  # documented through openapi_extra instead


@dataclass
class Recording(SimulatedProvider):
    """The simulated provider, remembering the task each charge ran in."""

    tasks: list[asyncio.Task[object] | None] = field(default_factory=list)

    async def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        method: str,
        card_number: str | None = None,
        reference: str,
    ) -> ProviderResult:
        """Remember the task, then charge as the simulator does."""
        self.tasks.append(asyncio.current_task())
        return await super().charge(
            amount_minor=amount_minor,
            currency=currency,
            method=method,
            card_number=card_number,
            reference=reference,
        )


async def _charge(provider: SimulatedProvider, card: str, reference: str) -> ProviderResult:
    return await charge_with_timeout(
        provider,
        amount_minor=100,
        currency="EUR",
        method="card",
        card_number=card,
        reference=reference,
    )


def test_a_charge_runs_in_the_callers_task_with_its_timeout() -> None:
    """No task per charge (asyncio.timeout, not wait_for), and a hung charge still times out."""
    provider = Recording(timeout_seconds=0.05)

    async def both() -> tuple[object, ProviderResult, ProviderResult]:
        done = await _charge(provider, GOOD_CARD, "pay-1")
        late = await _charge(provider, CARD_TIMEOUT, "pay-2")
        return asyncio.current_task(), done, late

    caller, done, late = asyncio.run(both())
    assert provider.tasks == [caller, caller]
    assert done.status is ProviderStatus.completed
    assert (late.status, late.failure_reason) == (ProviderStatus.failed, "provider_timeout")


@pytest.mark.parametrize(("card", "status"), [(GOOD_CARD, 201), (CARD_DECLINED, 402)])
def test_a_replayed_payment_is_the_same_bytes(
    live: Live, show: ShowSeed, card: str, status: int
) -> None:
    """A retry with the same Idempotency-Key gets the first answer byte for byte."""
    rid = hold(live.dsn, show, ["A1", "A2"], user_id=USER, now=live.now())
    headers = live.issuer.headers(sub=USER) | {"Idempotency-Key": f"bytes-{status}"}
    body = {"method": "card", "card_number": card}

    first = live.client.post(f"/reservations/{rid}/payments", json=body, headers=headers)
    again = live.client.post(f"/reservations/{rid}/payments", json=body, headers=headers)

    assert (first.status_code, again.status_code) == (status, status)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == first.content


def test_a_payment_with_a_valid_body_resolves_no_dependency(
    live: Live, show: ShowSeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid payment goes to the lean handler (common.routing.lean), keyed or not."""
    resolved = counted_resolutions(monkeypatch)
    user = live.issuer.headers(sub=USER)
    body = {"method": "card", "card_number": GOOD_CARD}
    first = hold(live.dsn, show, ["A1"], user_id=USER, now=live.now())
    second = hold(live.dsn, show, ["A2"], user_id=USER, now=live.now())
    keyed = user | {"Idempotency-Key": "lean-pay-1"}
    assert (
        live.client.post(f"/reservations/{first}/payments", json=body, headers=user).status_code
        == 201
    )
    assert (
        live.client.post(f"/reservations/{second}/payments", json=body, headers=keyed).status_code
        == 201
    )
    assert resolved == []
    # An invalid body is FastAPI's to refuse, with its own resolution and error body.
    bad = live.client.post(f"/reservations/{first}/payments", json={"method": "x"}, headers=user)
    assert bad.status_code == 422
    assert resolved == [f"/reservations/{first}/payments"]


class _Lines(logging.Handler):
    """The records one logger handles."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        self.records.append(record)


def test_every_payment_writes_its_line(live: Live, show: ShowSeed) -> None:
    """The `payment` line (the logs' audit trail) is written for each attempt, paid or refused."""
    lines = _Lines()
    log = logging.getLogger("payments")
    log.addHandler(lines)
    user = live.issuer.headers(sub=USER)
    try:
        for seat, card in (("A1", GOOD_CARD), ("A2", CARD_DECLINED)):
            rid = hold(live.dsn, show, [seat], user_id=USER, now=live.now())
            body = {"method": "card", "card_number": card}
            live.client.post(f"/reservations/{rid}/payments", json=body, headers=user)
    finally:
        log.removeHandler(lines)
    fields = [r.fields for r in lines.records if r.msg == "payment"]  # type: ignore[attr-defined]
    assert [(f["status"], f["failure_reason"]) for f in fields] == [
        ("completed", None),
        ("failed", "card_declined"),
    ]
    assert all(f["payment_id"].startswith("pay-") and f["amount_minor"] > 0 for f in fields)


def test_an_unkeyed_payment_builds_no_url(
    live: Live, show: ShowSeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an Idempotency-Key its path is never read, so `request.url` is not built."""
    built: list[str] = []
    url = HTTPConnection.url

    def counted(self: HTTPConnection) -> URL:
        built.append(self.scope["path"])
        return url.fget(self)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(HTTPConnection, "url", property(counted))
    user = live.issuer.headers(sub=USER)
    body = {"method": "card", "card_number": GOOD_CARD}
    first = hold(live.dsn, show, ["A1"], user_id=USER, now=live.now())
    assert (
        live.client.post(f"/reservations/{first}/payments", json=body, headers=user).status_code
        == 201
    )
    assert built == []
    second = hold(live.dsn, show, ["A2"], user_id=USER, now=live.now())
    keyed = user | {"Idempotency-Key": "url-1"}
    assert (
        live.client.post(f"/reservations/{second}/payments", json=body, headers=keyed).status_code
        == 201
    )
    assert built == [f"/reservations/{second}/payments"]
