"""Invariants read straight from a region's database after traffic (never through the API)."""

from typing import Any

import psycopg

from tests.reliability.traffic import Ledger


def seat_facts(dsn: str, show_id: str) -> dict[str, Any]:
    """Seat states of one show and the seats of its live reservations, from the database."""
    with psycopg.connect(dsn) as conn:
        taken = conn.execute(
            "SELECT seat_id, status, reservation_id FROM show_seats"
            " WHERE show_id = %s AND status IN ('held', 'sold')",
            (show_id,),
        ).fetchall()
        live = conn.execute(
            "SELECT rs.seat_id, r.id, r.status FROM reservation_seats rs"
            " JOIN reservations r ON r.id = rs.reservation_id"
            " WHERE r.show_id = %s AND (r.status = 'confirmed'"
            " OR (r.status = 'held' AND r.hold_expires_at > now()))",
            (show_id,),
        ).fetchall()
    return {"taken": taken, "live": live}


def assert_seats_consistent(dsn: str, show_id: str) -> dict[str, int]:
    """Each seat sold or held by at most one live reservation; seat map and reservations agree."""
    facts = seat_facts(dsn, show_id)
    live_seats = [seat for seat, _, _ in facts["live"]]
    assert len(live_seats) == len(set(live_seats)), "a seat belongs to two live reservations"
    by_seat = {seat: (res, status) for seat, res, status in facts["live"]}
    sold = {seat: res for seat, status, res in facts["taken"] if status == "sold"}
    for seat, res in sold.items():
        assert by_seat.get(seat, (None, ""))[0] == res, f"seat {seat} sold to {res}: not live"
        assert by_seat[seat][1] == "confirmed", f"seat {seat} sold but reservation not confirmed"
    confirmed = {seat for seat, (_, status) in by_seat.items() if status == "confirmed"}
    assert confirmed == set(sold), "confirmed reservations and sold seats disagree"
    taken = {seat: res for seat, _, res in facts["taken"]}
    for seat, (res, _) in by_seat.items():
        assert taken.get(seat) == res, f"seat {seat} of live {res} is not marked taken by it"
    return {"sold": len(sold), "held": len(by_seat) - len(sold)}


def assert_acknowledged_present(dsn: str, ledger: Ledger) -> None:
    """Every reservation and payment answered 2xx exists with the state it was answered with."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT id, status, hold_expires_at < now() FROM reservations WHERE id = ANY(%s)",
            (list(ledger.reservations),),
        ).fetchall()
        payments: dict[str, str] = dict(
            conn.execute(
                "SELECT id, status FROM payments WHERE id = ANY(%s)", (list(ledger.payments),)
            ).fetchall()
        )
    found = {
        rid: ("expired" if status == "held" and lapsed else status) for rid, status, lapsed in rows
    }
    missing = set(ledger.reservations) - set(found)
    assert not missing, f"acknowledged reservations lost: {sorted(missing)[:5]}"
    for rid, acked in ledger.reservations.items():
        if acked.uncertain:
            continue
        assert found[rid] == acked.status or (acked.status == "held" and found[rid] == "expired"), (
            rid,
            acked.status,
            found[rid],
        )
    assert payments == ledger.payments, "acknowledged payments lost or changed"
