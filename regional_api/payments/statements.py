"""The SQL of the payment path, run on psycopg (benchmarks/holds.py `hold_pay` measures it)."""

from common.db import raw_sql

# benchmarks/holds.py hold_pay: lock the reservation and its seats, look for a completed
# payment, price the seats and insert the pending payment in one round trip (who may pay is
# checked on its answer; a refusal rolls the insert back). FOR UPDATE returns the rows' newest
# versions after waiting, so a payment that won a race is seen through the status it
# confirmed, and `sellable` tells whether every seat is still this reservation's or free: the
# locks keep it so until commit, so the charge only happens for seats that will be sold.
OPEN_PAYMENT = raw_sql("""
WITH r AS (
  SELECT id, show_id, cinema_id, user_id, status, currency FROM reservations
  WHERE id = :rid FOR UPDATE),
paid AS (
  SELECT EXISTS (SELECT 1 FROM payments WHERE reservation_id = :rid AND status = 'completed')
    AS paid),
due AS (
  SELECT coalesce(sum(price_minor), 0) AS amount, count(*) AS seats
  FROM reservation_seats WHERE reservation_id = :rid),
seats AS (
  SELECT reservation_id = :rid OR status = 'free' OR (status = 'held' AND held_until <= :now)
    AS ours
  FROM show_seats
  WHERE show_id = (SELECT show_id FROM r)
    AND seat_id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = :rid)
  ORDER BY seat_id FOR UPDATE),
opened AS (
  INSERT INTO payments (id, reservation_id, method, status, amount_minor, currency, created_at)
  SELECT :pid, r.id, :method, 'pending', due.amount, r.currency, :now
  FROM r, paid, due
  WHERE r.status IN ('held', 'expired') AND NOT paid.paid
  RETURNING id)
SELECT r.show_id, r.cinema_id, r.user_id, r.status, r.currency, paid.paid, due.amount, due.seats,
       (SELECT count(*) FILTER (WHERE ours) = due.seats FROM seats) AS sellable
FROM r, paid, due
""")

# benchmarks/holds.py hold_pay: after a completed charge, in one round trip: sell the locked
# reservation's seats, give each sold seat the code at its rank, confirm the reservation,
# complete the payment, and return the tickets; nothing changes unless every seat can be sold.
SELL_AND_COMPLETE = raw_sql("""
WITH mine AS (
  SELECT seat_id, seat_type, price_minor, checked_in_at,
         row_number() OVER (ORDER BY seat_id) AS rank
  FROM reservation_seats WHERE reservation_id = :rid),
target AS (
  SELECT show_id, seat_id, status, held_until, reservation_id FROM show_seats
  WHERE show_id = :show_id AND seat_id IN (SELECT seat_id FROM mine)
  ORDER BY seat_id FOR UPDATE),
ready AS (
  SELECT count(*) = (SELECT count(*) FROM mine) AS ok FROM target
  WHERE reservation_id = :rid OR status = 'free' OR (status = 'held' AND held_until <= :now)),
sold AS (
  UPDATE show_seats s SET status = 'sold', reservation_id = :rid, held_until = NULL
  FROM target t, ready
  WHERE ready.ok AND s.show_id = t.show_id AND s.seat_id = t.seat_id
    AND (s.reservation_id = :rid OR s.status = 'free'
         OR (s.status = 'held' AND s.held_until <= :now))
  RETURNING s.seat_id),
ticketed AS (
  UPDATE reservation_seats rs SET ticket_code = (CAST(:codes AS text[]))[m.rank]
  FROM mine m, sold
  WHERE rs.reservation_id = :rid AND rs.seat_id = m.seat_id AND sold.seat_id = m.seat_id
  RETURNING rs.seat_id, rs.ticket_code),
confirmed AS (
  UPDATE reservations SET status = 'confirmed', confirmed_at = :now, hold_expires_at = NULL
  FROM ready WHERE ready.ok AND id = :rid),
completed AS (
  UPDATE payments SET status = 'completed', provider_ref = :ref, completed_at = :now
  FROM ready WHERE ready.ok AND id = :pid)
SELECT t.ticket_code AS code, t.seat_id, st.label AS seat_label, m.seat_type, m.price_minor,
       m.checked_in_at
FROM ticketed t JOIN mine m ON m.seat_id = t.seat_id JOIN seats st ON st.id = t.seat_id
ORDER BY st.grid_row, st.grid_col
""")

# A charge that did not complete: its outcome, and the hold is kept.
FINISH_PAYMENT = raw_sql("""
UPDATE payments SET status = :status, provider_ref = :ref, failure_reason = :reason,
                    completed_at = :completed_at
WHERE id = :pid
""")
