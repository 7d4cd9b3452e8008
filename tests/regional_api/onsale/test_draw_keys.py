"""Draw keys: an early customer's line number comes with its join, so the draw asks nothing of it."""

from datetime import timedelta

import psycopg

from regional_api.onsale.passes import LATER
from tests.regional_api.factories import ShowSeed, query
from tests.regional_api.onsale.test_line_state import state
from tests.regional_api.onsale.test_line_ticket import counted, poll
from tests.regional_api.onsale.test_waiting_room import announce, customer, join
from tests.regional_api.served import Live
from tests.support.poll import wait_until


def number(ticket: str) -> int:
    """The line number a ticket carries."""
    return int(ticket.split(".")[0])


def keys(live: Live, show: ShowSeed) -> dict[str, tuple[int | None, int | None]]:
    """(draw key, rank) of each customer in the show's line."""
    rows = query(
        live.dsn,
        "SELECT user_id, draw_key, rank FROM line_entries WHERE show_id = %s",
        show.show_id,
    )
    return {user: (key, rank) for user, key, rank in rows}


def test_the_draw_ranks_by_key_not_by_join_order(live: Live, show: ShowSeed) -> None:
    announce(live, show, opens_in=timedelta(hours=1), rate=0.5)
    early = [f"user-early-{n}" for n in range(30)]
    tickets = {user: join(live, show, user.removeprefix("user-"))["line_ticket"] for user in early}
    assert all(0 < number(ticket) < LATER for ticket in tickets.values())

    live.advance(timedelta(hours=1, seconds=1))  # the opening: the first join draws
    late = join(live, show, "late-0")["line_ticket"]

    drawn = keys(live, show)
    assert {user: number(tickets[user]) for user in early} == {u: drawn[u][0] for u in early}
    by_key = sorted(early, key=lambda user: (drawn[user][0], user))
    assert [drawn[user][1] for user in by_key] == list(range(1, 31))
    assert by_key != early, "the draw kept the join order"
    assert number(late) == LATER + 31  # a later arrival: 10^12 + its rank
    assert drawn["user-late-0"] == (None, 31)


def test_a_key_stays_the_same_when_the_customer_joins_again_or_leaves_and_comes_back(
    live: Live, show: ShowSeed
) -> None:
    announce(live, show, opens_in=timedelta(hours=1))
    first = join(live, show, 1)["line_ticket"]
    assert join(live, show, 1)["line_ticket"] == first
    left = live.client.delete(f"/shows/{show.show_id}/line", headers=customer(live, 1))
    assert left.status_code == 204
    assert keys(live, show) == {}
    assert join(live, show, 1)["line_ticket"] == first  # no new draw by leaving
    assert keys(live, show)["user-1"] == (number(first), None)
    assert number(join(live, show, 2)["line_ticket"]) != number(first)  # another customer's


def test_the_state_marks_admission_in_the_tickets_line_numbers(live: Live, show: ShowSeed) -> None:
    # No holds: the pace is a quarter of the ceiling, one admission every 2 s (was 4 s at 1.0).
    announce(live, show, opens_in=timedelta(seconds=30), rate=2.0)
    early = {n: number(join(live, show, n)["line_ticket"]) for n in range(3)}
    counted(live, show)
    before = state(live, show.show_id)
    assert (before["admitted_mark"], before["early_count"]) == (0, 0)

    live.advance(timedelta(seconds=31))  # the opening: the draw, then the admissions
    wait_until(lambda: state(live, show.show_id)["admitted_through"] >= 1)
    drawn = keys(live, show)
    key_of_rank = {rank: key for key, rank in drawn.values()}

    def marked_among_the_early() -> bool:
        now = state(live, show.show_id)
        through = int(now["admitted_through"])
        return 1 <= through < 3 and int(now["admitted_mark"]) == key_of_rank[through]

    wait_until(marked_among_the_early)
    assert state(live, show.show_id)["early_count"] == 3
    last = max(early, key=lambda n: early[n])  # the greatest key is not admitted yet
    assert poll(live, show, last, None)["state"] == "waiting"

    late = number(join(live, show, "late")["line_ticket"])
    wait_until(lambda: state(live, show.show_id)["admitted_mark"] >= late)
    final = state(live, show.show_id)
    assert final["admitted_mark"] == LATER + final["admitted_through"]


def test_the_mark_is_one_step_back_along_the_ranks_index(live: Live, show: ShowSeed) -> None:
    # The lookup inside line_admitted_mark (migration 0011), read every 0.1 s by each replica.
    announce(live, show, opens_in=timedelta(hours=1))
    with psycopg.connect(live.dsn, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # as on a line of thousands
        plan = conn.execute(
            "EXPLAIN SELECT e.draw_key FROM line_entries e WHERE e.show_id = %s"
            " AND e.rank <= 10 ORDER BY e.rank DESC LIMIT 1",
            (show.show_id,),
        ).fetchall()
    text = "\n".join(row[0] for row in plan)
    assert "Index Scan Backward using uq_line_entries_rank" in text, text
    assert "Sort" not in text, text
