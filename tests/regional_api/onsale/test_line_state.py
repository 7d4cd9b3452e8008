"""A line's public state: what the router's watch reads once for all the customers of a show."""

from datetime import timedelta
from typing import Any

from prometheus_client import REGISTRY

from tests.regional_api.factories import ShowSeed
from tests.regional_api.onsale.test_line_ticket import counted
from tests.regional_api.onsale.test_waiting_room import announce, buy_every_seat, join, place
from tests.regional_api.served import Live
from tests.support.poll import wait_until


def state(live: Live, show_id: str) -> dict[str, Any]:
    """The line's state, asked with no token (it is public); its HTTP status in `http`."""
    answer = live.client.get(f"/shows/{show_id}/line/state")
    return {**answer.json(), "http": answer.status_code}


def reads(by: str) -> float:
    """Reads of a line's state answered so far by the replica's counters or the database."""
    return REGISTRY.get_sample_value("onsale_line_state_reads_total", {"answered": by}) or 0.0


def test_a_show_without_an_on_sale_has_no_waiting_room(live: Live, show: ShowSeed) -> None:
    answer = state(live, show.show_id)
    assert (answer["http"], answer["waiting_room"], answer["version"]) == (200, False, "none")


def test_an_unknown_or_malformed_show_is_a_4xx(live: Live, show: ShowSeed) -> None:
    unknown = show.show_id[:-4] + "zzzz"
    assert state(live, unknown)["http"] == 404
    malformed = state(live, "not-a-show")
    assert 400 <= int(str(malformed["http"])) < 500
    assert "error" in malformed


def test_the_version_moves_at_the_sell_out_not_at_the_draw(live: Live, show: ShowSeed) -> None:
    announce(live, show, opens_in=timedelta(seconds=30), rate=20.0)
    for n in range(4):
        join(live, show, n)
    counted(live, show)
    wait_until(lambda: state(live, show.show_id)["line_length"] == 4)  # the next reading
    before = state(live, show.show_id)
    assert (before["waiting_room"], before["drawn"], before["sold_out"]) == (True, False, False)

    live.advance(timedelta(seconds=31))  # the opening: the draw, then admissions
    wait_until(lambda: state(live, show.show_id)["admitted_through"] >= 1)
    drawn = state(live, show.show_id)
    assert drawn["drawn"] is True
    # Every early customer has its number from its join: no watch is answered at the draw.
    assert drawn["version"] == before["version"]
    memory = reads("memory")
    assert state(live, show.show_id)["version"] == drawn["version"]  # admissions: same version
    assert reads("memory") > memory  # answered from the counters

    wait_until(lambda: place(live, show, 0)["state"] == "admitted")
    buy_every_seat(live, show, place(live, show, 0)["admission_pass"])
    wait_until(lambda: state(live, show.show_id)["sold_out"] is True)
    assert state(live, show.show_id)["version"] != before["version"]
