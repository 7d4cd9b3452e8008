"""The simulated provider and the Luhn check, without a database."""

import asyncio

import pytest

from regional_api.payments.provider import (
    CARD_DECLINED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_OK,
    CARD_TIMEOUT,
    ProviderResult,
    ProviderStatus,
    SimulatedProvider,
    charge_with_timeout,
    luhn_valid,
)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        (CARD_OK, True),
        (CARD_DECLINED, True),
        (CARD_INSUFFICIENT_FUNDS, True),
        (CARD_TIMEOUT, True),
        ("79927398713", False),  # valid checksum but too short for a card
        ("4242424242424241", False),
        ("4242 4242 4242 4242", False),
        ("", False),
        ("4" * 20, False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def charge(provider: SimulatedProvider, method: str, card: str | None, ref: str) -> ProviderResult:
    return asyncio.run(
        charge_with_timeout(
            provider,
            amount_minor=1000,
            currency="EUR",
            method=method,
            card_number=card,
            reference=ref,
        )
    )


def test_test_cards_decide_the_outcome_and_a_reference_is_charged_once() -> None:
    provider = SimulatedProvider(timeout_seconds=0.05)

    outcomes = {
        ref: (result.status, result.failure_reason)
        for ref, method, card in [
            ("ok", "card", CARD_OK),
            ("declined", "card", CARD_DECLINED),
            ("funds", "card", CARD_INSUFFICIENT_FUNDS),
            ("slow", "card", CARD_TIMEOUT),
            ("cash", "cash", None),
            ("online", "online", None),
        ]
        for result in [charge(provider, method, card, ref)]
    }

    assert outcomes == {
        "ok": (ProviderStatus.completed, None),
        "declined": (ProviderStatus.failed, "card_declined"),
        "funds": (ProviderStatus.failed, "insufficient_funds"),
        "slow": (ProviderStatus.failed, "provider_timeout"),
        "cash": (ProviderStatus.completed, None),
        "online": (ProviderStatus.completed, None),
    }
    again = charge(provider, "card", CARD_DECLINED, "ok")
    assert again == provider.charges["ok"]
    assert "slow" not in provider.charges
