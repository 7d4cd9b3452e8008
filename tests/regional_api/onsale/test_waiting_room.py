"""The waiting room of an announced on-sale: a fair line, passes that admit one customer."""

import time
from datetime import timedelta
from typing import Any

from schemas.auth import Role
from tests.regional_api.factories import GOOD_CARD, ShowSeed, query, seed_show
from tests.regional_api.served import Live
from tests.support.poll import wait_until

PASS = "X-Admission-Pass"


def admin(live: Live) -> dict[str, str]:
    return live.issuer.headers(sub="user-admin", role=Role.admin)


def customer(live: Live, n: int | str) -> dict[str, str]:
    return live.issuer.headers(sub=f"user-{n}")


def buy_every_seat(live: Live, show: ShowSeed, admission: str) -> None:
    """Customer 0, admitted with `admission`, holds and pays for every seat of the show."""
    headers = customer(live, 0) | {PASS: admission}
    seats = show.ids("A1", "A2", "A3", "A4", "B1", "B2")
    held = live.client.post(
        f"/shows/{show.show_id}/holds", json={"seat_ids": seats}, headers=headers
    )
    assert held.status_code == 201, held.text
    paid = live.client.post(
        f"/reservations/{held.json()['id']}/payments",
        json={"method": "card", "card_number": GOOD_CARD},
        headers=customer(live, 0),
    )
    assert paid.status_code == 201, paid.text


def announce(live: Live, show: ShowSeed, *, opens_in: timedelta, rate: float = 4.0) -> Any:
    body = {
        "opens_at": (live.now() + opens_in).isoformat(),
        "window_minutes": 10,
        "max_admit_per_second": rate,
    }
    answer = live.client.put(f"/shows/{show.show_id}/onsale", json=body, headers=admin(live))
    assert answer.status_code == 200, answer.text
    return answer.json()


def join(live: Live, show: ShowSeed, n: int | str) -> Any:
    answer = live.client.post(f"/shows/{show.show_id}/line", headers=customer(live, n))
    assert answer.status_code == 200, answer.text
    return answer.json()


def place(live: Live, show: ShowSeed, n: int | str) -> Any:
    return live.client.get(f"/shows/{show.show_id}/line", headers=customer(live, n)).json()


def ranks(live: Live, show: ShowSeed) -> dict[str, int | None]:
    rows = query(
        live.dsn, "SELECT user_id, rank FROM line_entries WHERE show_id = %s", show.show_id
    )
    return dict(rows)


def hold(live: Live, show: ShowSeed, n: int | str, label: str, admission: str | None) -> Any:
    headers = customer(live, n) | ({PASS: admission} if admission else {})
    answer = live.client.post(
        f"/shows/{show.show_id}/holds", json={"seat_ids": show.ids(label)}, headers=headers
    )
    return {**answer.json(), "http": answer.status_code}


def test_the_early_line_is_shuffled_and_later_arrivals_keep_their_order(
    live: Live, show: ShowSeed
) -> None:
    announce(live, show, opens_in=timedelta(hours=1), rate=0.5)
    early = [f"early-{n}" for n in range(30)]
    for user in early:
        status = join(live, show, user)
        assert (status["state"], status["position"]) == ("waiting", None)
    assert join(live, show, "early-0")["line_length"] == 30  # joining again keeps the place

    live.advance(timedelta(hours=1, seconds=1))  # the opening
    late = [f"late-{n}" for n in range(10)]
    for user in late:
        join(live, show, user)

    order = ranks(live, show)
    early_ranks = [order[f"user-{user}"] for user in early]
    assert sorted(early_ranks) == list(range(1, 31))  # type: ignore[type-var]
    assert early_ranks != list(range(1, 31)), "the early line kept its arrival order"
    assert [order[f"user-{user}"] for user in late] == list(range(31, 41))  # 0 inversions
    status = place(live, show, "late-9")
    assert status["state"] == "waiting"
    assert (
        status["position"]
        == 40
        - query(live.dsn, "SELECT admitted_through FROM onsales WHERE show_id = %s", show.show_id)[
            0
        ][0]
    )
    assert status["estimated_wait_seconds"] > 0


def test_admission_follows_the_line_and_a_pass_admits_only_its_customer(
    live: Live, show: ShowSeed, regional_dsn: str
) -> None:
    announce(live, show, opens_in=timedelta(seconds=-1), rate=2.0)
    for n in range(4):
        join(live, show, n)
    wait_until(lambda: place(live, show, 0)["state"] == "admitted")
    first = place(live, show, 0)
    admission = first["admission_pass"]
    # Admission is a prefix of the line: nobody behind an unadmitted customer is admitted.
    admitted = query(
        regional_dsn,
        "SELECT rank FROM line_entries WHERE show_id = %s AND admitted_at IS NOT NULL ORDER BY rank",
        show.show_id,
    )
    assert [rank for (rank,) in admitted] == list(range(1, len(admitted) + 1))

    assert hold(live, show, 0, "A1", None)["error"] == "queue_required"
    assert hold(live, show, 0, "A1", "123.forged")["reason"] == "forged"
    assert hold(live, show, 3, "A1", admission)["reason"] == "forged"  # another customer's
    other = seed_show(regional_dsn)
    announce(live, other, opens_in=timedelta(seconds=-1))
    # The replica's set of waiting rooms is refreshed every second.
    wait_until(lambda: other.show_id in live.app.state.waiting_rooms.shows)
    assert hold(live, other, 0, "A1", admission)["reason"] == "forged"  # another show's
    held = hold(live, show, 0, "A1", admission)
    assert held["http"] == 201, held

    live.advance(timedelta(minutes=11))  # the window is over
    assert hold(live, show, 0, "A2", admission)["reason"] == "expired"
    assert place(live, show, 0)["state"] == "expired"


def test_a_show_without_a_waiting_room_sells_as_before(live: Live, show: ShowSeed) -> None:
    assert place(live, show, 1)["state"] == "open"
    assert hold(live, show, 1, "A1", None)["http"] == 201


def test_everyone_waiting_is_told_when_the_show_sells_out(live: Live, show: ShowSeed) -> None:
    announce(live, show, opens_in=timedelta(seconds=-1), rate=20.0)
    for n in range(10):
        join(live, show, n)
    wait_until(lambda: place(live, show, 0)["state"] == "admitted")
    buy_every_seat(live, show, place(live, show, 0)["admission_pass"])

    wait_until(lambda: place(live, show, 9)["state"] == "sold_out", timeout=5)
    figures = live.client.get(f"/shows/{show.show_id}/onsale").json()
    assert (figures["sold"], figures["free"], figures["sold_out"]) == (6, 0, True)


def test_only_admins_announce_on_sales(live: Live, show: ShowSeed) -> None:
    body = {"opens_at": live.now().isoformat()}
    url = f"/shows/{show.show_id}/onsale"
    staff = live.issuer.headers(sub="user-staff", role=Role.staff, cinemas=(show.cinema_id,))
    for headers in (customer(live, 1), staff):
        assert live.client.put(url, json=body, headers=headers).status_code == 403
        assert live.client.delete(url, headers=headers).status_code == 403
    assert live.client.put(url, json=body).status_code == 401
    assert live.client.post(f"/shows/{show.show_id}/line").status_code == 401


def test_admission_stops_at_the_free_seats_and_a_leaver_lets_the_next_in(
    live: Live, show: ShowSeed
) -> None:
    announce(live, show, opens_in=timedelta(seconds=-1), rate=40.0)
    for n in range(8):
        join(live, show, n)
    # 6 free seats: 6 admitted customers who hold nothing yet fill the room.
    wait_until(lambda: place(live, show, 5)["state"] == "admitted")
    time.sleep(1.5)
    assert place(live, show, 6)["state"] == "waiting"
    gone = live.client.delete(f"/shows/{show.show_id}/line", headers=customer(live, 0))
    assert gone.status_code == 204
    assert place(live, show, 0)["state"] == "not_in_line"
    wait_until(lambda: place(live, show, 6)["state"] == "admitted")
    assert place(live, show, 7)["state"] == "waiting"
