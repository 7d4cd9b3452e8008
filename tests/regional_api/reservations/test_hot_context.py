"""The hot writes' single dependency refuses in the order the former chain did, same bodies."""

from typing import Any

import httpx
import pytest

from harness import tokens
from tests.regional_api.factories import GOOD_CARD, ShowSeed

BAD_KEY = {"Idempotency-Key": "has a space"}
UNKNOWN_RESERVATION = "res-eu-west-0000000000000000000000"
CARD = {"method": "card", "card_number": GOOD_CARD}


def _cases(show: ShowSeed, issuer: tokens.TestIssuer) -> list[tuple[str, dict[str, Any], Any]]:
    """(path, headers, body) of requests wrong in more than one way."""
    user = issuer.headers(sub="usr-hot-context")
    holds = f"/shows/{show.show_id}/holds"
    return [
        ("/shows/show-us-east-x/holds", BAD_KEY, {"seat_ids": [0]}),  # another region's show
        ("/shows/not-a-show/best-available", {}, {"count": 0}),
        (holds, BAD_KEY, {"seat_ids": [0]}),  # anonymous
        (holds, {"Authorization": "Basic abc"} | BAD_KEY, {"seat_ids": [0]}),
        (holds, user | BAD_KEY, {"seat_ids": [0]}),
        (holds, user, {"seat_ids": [0]}),
        (f"/shows/{show.show_id}/best-available", user | BAD_KEY, {"count": 0}),
        (f"/reservations/{UNKNOWN_RESERVATION}/payments", BAD_KEY, {"method": "x"}),
        (f"/reservations/{UNKNOWN_RESERVATION}/payments", user | BAD_KEY, {"method": "x"}),
        ("/reservations/not-a-reservation/payments", user, {"method": "x"}),
        ("/reservations/not-a-reservation/payments", user, {"method": "card"}),
        # Valid bodies: served by the lean handler (common.routing.lean), same checks, same order.
        ("/shows/show-us-east-x/holds", BAD_KEY, {"seat_ids": [1]}),
        (holds, BAD_KEY, {"seat_ids": [1]}),
        (holds, {"Authorization": "Basic abc"} | BAD_KEY, {"seat_ids": [1]}),
        (holds, user | BAD_KEY, {"seat_ids": [1]}),
        (f"/shows/{show.show_id}/best-available", user | BAD_KEY, {"count": 2}),
        (f"/reservations/{UNKNOWN_RESERVATION}/payments", BAD_KEY, CARD),
        (f"/reservations/{UNKNOWN_RESERVATION}/payments", user | BAD_KEY, CARD),
        ("/reservations/res-us-east-k3v9q2m8x7p4/payments", user, CARD),
        (f"/reservations/{UNKNOWN_RESERVATION}/payments", user, CARD),
    ]


# What main answered before the change (status, error code), case by case.
EXPECTED = [
    (404, "show_not_found"),
    (404, "show_not_found"),
    (401, "unauthorized"),
    (401, "unauthorized"),
    (422, "invalid_idempotency_key"),
    (422, "validation_error"),
    (422, "invalid_idempotency_key"),
    (401, "unauthorized"),
    (422, "invalid_idempotency_key"),
    (422, "validation_error"),
    (404, "reservation_not_found"),
    (404, "show_not_found"),
    (401, "unauthorized"),
    (401, "unauthorized"),
    (422, "invalid_idempotency_key"),
    (422, "invalid_idempotency_key"),
    (401, "unauthorized"),
    (422, "invalid_idempotency_key"),
    (404, "reservation_not_found"),
    (404, "reservation_not_found"),
]


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_refusal_precedence_is_unchanged(
    client: httpx.Client, show: ShowSeed, issuer: tokens.TestIssuer, index: int
) -> None:
    """Show id, then token, then key, then the body, then the reservation id: as before."""
    path, headers, body = _cases(show, issuer)[index]
    answer = client.post(path, json=body, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == EXPECTED[index], (path, answer.text)
