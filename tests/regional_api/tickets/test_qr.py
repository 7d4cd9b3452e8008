"""A paid ticket's QR code: served as SVG to whoever may see the reservation, and it scans."""

import io
import re

import pytest

from regional_api.tickets.qr import ticket_qr, ticket_svg
from schemas.auth import Role
from tests.regional_api.factories import GOOD_CARD, ShowSeed, hold
from tests.regional_api.served import Live
from tests.support.qr import decoded

USER = "user-qr-owner"


def _png(code: str) -> bytes:
    out = io.BytesIO()
    ticket_qr(code).save(out, kind="png", scale=4)
    return out.getvalue()


def _paid(live: Live, show: ShowSeed, *labels: str) -> tuple[str, list[str]]:
    """A reservation of USER's paid by card: its id and ticket codes."""
    rid = hold(live.dsn, show, list(labels), user_id=USER, now=live.now())
    body = {"method": "card", "card_number": GOOD_CARD}
    answer = live.client.post(
        f"/reservations/{rid}/payments", json=body, headers=live.issuer.headers(sub=USER)
    )
    assert answer.status_code == 201, answer.text
    return rid, [ticket["code"] for ticket in answer.json()["tickets"]]


@pytest.mark.parametrize("code", ["x", "Ab3_-" * 4, "k" * 43, "Z9" * 50])
def test_rendered_code_decodes_back_to_the_ticket_code(code: str) -> None:
    assert decoded(_png(code)) == {code}


def test_owner_gets_an_svg_of_each_ticket_that_decodes(live: Live, show: ShowSeed) -> None:
    rid, codes = _paid(live, show, "A1", "A2")
    for code in codes:
        answer = live.client.get(
            f"/reservations/{rid}/tickets/{code}/qr.svg", headers=live.issuer.headers(sub=USER)
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/svg+xml"
        assert answer.content == ticket_svg(code)
        assert re.search(rb"^<svg [^>]*xmlns=", answer.content)
        assert f"<title>QR code of ticket {code}</title>".encode() in answer.content
        assert decoded(_png(code)) == {code}


def test_staff_and_admin_may_see_it_other_people_get_404(live: Live, show: ShowSeed) -> None:
    rid, codes = _paid(live, show, "A1")
    url = f"/reservations/{rid}/tickets/{codes[0]}/qr.svg"
    allowed = [
        live.issuer.headers(sub="staff-here", role=Role.staff, cinemas=(show.cinema_id,)),
        live.issuer.headers(sub="admin", role=Role.admin),
    ]
    for headers in allowed:
        assert live.client.get(url, headers=headers).status_code == 200
    refused = [
        live.issuer.headers(sub="user-someone-else"),
        live.issuer.headers(sub="staff-elsewhere", role=Role.staff, cinemas=("cin-eu-west-x",)),
    ]
    for headers in refused:
        answer = live.client.get(url, headers=headers)
        assert answer.status_code == 404
        assert answer.json()["error"] == "reservation_not_found"
    assert live.client.get(url).status_code == 401


def test_unknown_unpaid_and_malformed_codes_get_their_4xx(live: Live, show: ShowSeed) -> None:
    rid, codes = _paid(live, show, "A1")
    other_rid, other_codes = _paid(live, show, "A2")
    unpaid = hold(live.dsn, show, ["B1"], user_id=USER, now=live.now())
    owner = live.issuer.headers(sub=USER)
    for path in (
        f"/reservations/{rid}/tickets/{other_codes[0]}/qr.svg",  # another reservation's ticket
        f"/reservations/{rid}/tickets/no-such-code/qr.svg",
        f"/reservations/{unpaid}/tickets/{codes[0]}/qr.svg",
    ):
        answer = live.client.get(path, headers=owner)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "ticket_not_found"
    for code in ("bad%20code", "x" * 101):
        answer = live.client.get(f"/reservations/{rid}/tickets/{code}/qr.svg", headers=owner)
        assert answer.status_code == 422
        assert answer.json()["error"] == "validation_error"
    assert other_rid != rid
