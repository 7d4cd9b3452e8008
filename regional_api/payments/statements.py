"""The SQL of the payment path, run on psycopg (benchmarks/holds.py `hold_pay` measures it).

A payment is two short statements with the provider's charge between them and no lock or
connection held across it: `OPEN_PAYMENT` records the intent and guards the seats, `SETTLE`
sells them and completes the payment, or marks it for a refund when they were lost meanwhile.
With an Idempotency-Key each carries the key (`*_KEYED`): the payment stays two round trips.
"""

from regional_api.idempotency.service import KEY_COLUMNS, KEY_USED

# One round trip: lock the reservation and its seats, check who may pay and that nothing is
# paid or in flight, price the seats, insert the pending payment and hold the seats for this
# reservation until at least :guard (the charge's timeout plus a margin), so they cannot lapse
# while the provider answers. A seat or reservation already held that long is left as it is:
# paying a live hold (its deadline minutes past the guard) then writes no new version of them,
# no WAL and no index entry (docs/benchmarks/floor.md, "PostgreSQL CPU per hold and payment").
# FOR UPDATE returns the rows' newest versions after waiting, so a payment that won a race is
# seen through the status it confirmed; a race that slips past the `pending` check meets the
# unique index of open payments. The updates find the locked rows by key, not by the `ctid`
# the lock returned: a row updated by another transaction while this one waited is locked in a
# version this statement's snapshot cannot see, so a write by `ctid` would skip it
# (tests/regional_api/payments/test_payment_races.py).
_OPEN = """r AS (
  SELECT id, show_id, cinema_id, user_id, status, currency,
         CAST(%(admin)s AS boolean) OR cinema_id = ANY(CAST(%(cinemas)s AS text[])) AS manages
  FROM reservations WHERE id = %(rid)s FOR UPDATE),
prior AS (
  SELECT coalesce(bool_or(status = 'completed'), false) AS paid,
         coalesce(bool_or(status = 'pending'), false) AS pending
  FROM payments WHERE reservation_id = %(rid)s),
due AS (
  SELECT coalesce(sum(price_minor), 0) AS amount, count(*) AS seats
  FROM reservation_seats WHERE reservation_id = %(rid)s),
seats AS (
  SELECT seat_id,
         reservation_id = %(rid)s OR status = 'free' OR (status = 'held' AND held_until <= %(now)s)
           AS ours
  FROM show_seats
  WHERE show_id = (SELECT show_id FROM r)
    AND seat_id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = %(rid)s)
  ORDER BY seat_id FOR UPDATE),
verdict AS (
  SELECT r.id, r.show_id, r.cinema_id, r.user_id, r.status, r.currency, prior.paid,
         prior.pending, due.amount, due.seats,
         CAST(%(payer)s AS text) IS NULL OR r.user_id = %(payer)s OR r.manages AS allowed,
         %(method)s <> 'cash' OR CAST(%(payer)s AS text) IS NULL OR r.manages AS cash_ok,
         (SELECT count(*) FILTER (WHERE ours) FROM seats) = due.seats AS sellable
  FROM r, prior, due),
go AS (
  SELECT id, currency, amount FROM verdict
  WHERE allowed AND cash_ok AND sellable AND status IN ('held', 'expired') AND NOT paid
    AND NOT pending{key_free}),
opened AS (
  INSERT INTO payments (id, reservation_id, method, status, amount_minor, currency, created_at)
  SELECT %(pid)s, go.id, %(method)s, 'pending', go.amount, go.currency, %(now)s FROM go
  RETURNING id),
guarded AS (
  UPDATE show_seats s SET status = 'held', reservation_id = %(rid)s,
    held_until = CASE WHEN s.reservation_id = %(rid)s AND s.status = 'held'
                      THEN greatest(s.held_until, %(guard)s) ELSE %(guard)s END
  FROM go, seats t
  WHERE s.show_id = (SELECT show_id FROM r) AND s.seat_id = t.seat_id
    AND NOT coalesce(s.reservation_id = %(rid)s AND s.status = 'held'
                     AND s.held_until >= %(guard)s, false)),
revived AS (
  UPDATE reservations SET status = 'held',
    hold_expires_at = greatest(coalesce(hold_expires_at, %(guard)s), %(guard)s)
  FROM go WHERE reservations.id = go.id
    AND NOT coalesce(reservations.status = 'held' AND reservations.hold_expires_at >= %(guard)s,
                     false))"""
_KEY_FREE = "\n    AND NOT EXISTS (SELECT 1 FROM used)"
_OPENED = """
SELECT show_id, cinema_id, user_id, status, currency, paid, pending, amount, seats, allowed,
       cash_ok, sellable"""
OPEN_PAYMENT = f"""
WITH {_OPEN.format(key_free="")}{_OPENED}
FROM verdict
"""

# The same open with an Idempotency-Key, still one round trip: nothing is opened when the key
# was used (its row comes back instead), and an opened payment inserts the key row with the
# pending answer, 202 and the payment's id (SETTLE_KEYED stores the final status).
OPEN_PAYMENT_KEYED = f"""
WITH {KEY_USED},
{_OPEN.format(key_free=_KEY_FREE)},
stored AS (
  INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response)
  SELECT %(scope)s, %(key)s, %(hash)s, 202, jsonb_build_object('payment_id', CAST(%(pid)s AS text))
  FROM go){_OPENED},
       {KEY_COLUMNS}
FROM verdict
"""  # noqa: S608 - constant fragments only

# One round trip after a completed charge: lock the pending payment and its reservation, then
# the seats; if every seat is still this reservation's or free and the reservation was not
# canceled meanwhile, sell them, give each the code at its rank, confirm the reservation and
# complete the payment; otherwise mark the payment `refunding` (its money goes back). Nothing
# happens unless the payment is still pending: a settled payment is settled once. As in the open,
# the updates find the locked rows by key. `IS TRUE`: with a plain equality the planner
# proves the unsettled payments' partial index from it and scans that whole index for the key.
_SETTLE = """pay AS (
  SELECT p.id, r.status AS reservation_status
  FROM payments p JOIN reservations r ON r.id = p.reservation_id
  WHERE p.id = %(pid)s AND p.reservation_id = %(rid)s AND (p.status = 'pending') IS TRUE
  FOR UPDATE),
mine AS (
  SELECT seat_id, row_number() OVER (ORDER BY seat_id) AS rank
  FROM reservation_seats WHERE reservation_id = %(rid)s),
target AS (
  SELECT seat_id, status, held_until, reservation_id FROM show_seats
  WHERE show_id = %(show_id)s AND seat_id IN (SELECT seat_id FROM mine)
    AND EXISTS (SELECT 1 FROM pay)
  ORDER BY seat_id FOR UPDATE),
ready AS (
  SELECT EXISTS (SELECT 1 FROM pay WHERE reservation_status IN ('held', 'expired'))
         AND count(*) = (SELECT count(*) FROM mine) AS ok
  FROM target
  WHERE reservation_id = %(rid)s OR status = 'free' OR (status = 'held' AND held_until <= %(now)s)),
sold AS (
  UPDATE show_seats s SET status = 'sold', reservation_id = %(rid)s, held_until = NULL
  FROM target t, ready
  WHERE ready.ok AND s.show_id = %(show_id)s AND s.seat_id = t.seat_id
  RETURNING s.seat_id),
ticketed AS (
  UPDATE reservation_seats rs SET ticket_code = (CAST(%(codes)s AS text[]))[m.rank]
  FROM mine m, sold
  WHERE rs.reservation_id = %(rid)s AND rs.seat_id = m.seat_id AND sold.seat_id = m.seat_id
  RETURNING rs.seat_id, rs.ticket_code, rs.seat_type, rs.price_minor, rs.checked_in_at),
confirmed AS (
  UPDATE reservations SET status = 'confirmed', confirmed_at = %(now)s, hold_expires_at = NULL
  FROM ready WHERE ready.ok AND reservations.id = %(rid)s),
settled AS (
  UPDATE payments SET provider_ref = %(ref)s,
    status = CASE WHEN ready.ok THEN 'completed' ELSE 'refunding' END,
    completed_at = CASE WHEN ready.ok THEN %(now)s END,
    failure_reason = CASE WHEN ready.ok THEN failure_reason ELSE 'hold_lapsed' END
  FROM pay, ready WHERE payments.id = pay.id)"""
_SOLD = """
SELECT t.ticket_code AS code, t.seat_id, st.label AS seat_label, t.seat_type, t.price_minor,
       t.checked_in_at
FROM ticketed t JOIN seats st ON st.id = t.seat_id
ORDER BY st.grid_row, st.grid_col
"""
SETTLE = f"""
WITH {_SETTLE}{_SOLD}"""

# The same settle with the payment's Idempotency-Key: the key's answer becomes 201 (sold) or
# 409 (the seats were lost: the charge is refunded), in the same statement.
SETTLE_KEYED = f"""
WITH {_SETTLE},
answered AS (
  UPDATE idempotency_keys SET status_code = CASE WHEN ready.ok THEN 201 ELSE 409 END
  FROM pay, ready WHERE scope = %(scope)s AND key = %(key)s){_SOLD}"""  # noqa: S608 - constant fragments only

# A charge that did not complete (`failed`), or that timed out and must be voided
# (`refunding`); only while the payment is still pending.
_FINISH = """UPDATE payments SET status = %(status)s, provider_ref = %(ref)s, failure_reason = %(reason)s
WHERE id = %(pid)s AND status = 'pending'
RETURNING status, provider_ref, failure_reason, completed_at"""
FINISH = f"""
{_FINISH}
"""

# The same with the payment's Idempotency-Key: the key's answer becomes 402 (payment_failed).
FINISH_KEYED = f"""
WITH finished AS (
{_FINISH}),
answered AS (
  UPDATE idempotency_keys SET status_code = 402
  FROM finished WHERE scope = %(scope)s AND key = %(key)s)
SELECT * FROM finished
"""  # noqa: S608 - constant fragments only

# The provider answered the refund (or void) of a `refunding` payment.
REFUNDED = """
UPDATE payments SET status = CASE WHEN %(returned)s THEN 'refunded' ELSE 'failed' END
WHERE id = %(pid)s AND status = 'refunding'
RETURNING status
"""

# A failed counter sale leaves nothing held: its reservation is canceled, its seats freed
# (found through reservation_seats: show_seats.reservation_id has no index, migration 0007).
DROP_SALE = """
WITH freed AS (
  UPDATE show_seats ss SET status = 'free', reservation_id = NULL, held_until = NULL
  FROM reservation_seats rs
  WHERE rs.reservation_id = %(rid)s AND ss.show_id = rs.show_id AND ss.seat_id = rs.seat_id
    AND ss.reservation_id = %(rid)s AND ss.status = 'held')
UPDATE reservations SET status = 'canceled', canceled_at = %(now)s
WHERE id = %(rid)s AND status = 'held'
"""

# A payment's current row (after a settle that sold nothing).
PAYMENT = """
SELECT status, provider_ref, failure_reason, completed_at FROM payments WHERE id = %(pid)s
"""

# A payment whole, with its reservation's status: what a replay of its key answers from.
PAYMENT_READ = """
SELECT p.id, p.reservation_id, p.method, p.status, p.amount_minor, p.currency, p.provider_ref,
       p.failure_reason, p.created_at, p.completed_at, r.status AS reservation_status
FROM payments p JOIN reservations r ON r.id = p.reservation_id
WHERE p.id = %(pid)s
"""

# The reconciler's work: payments left unsettled past :before (their replica died mid-charge,
# or a refund was not confirmed), with what settling them needs.
UNSETTLED = """
SELECT p.id, p.reservation_id, p.method, p.status, p.amount_minor, p.currency, p.created_at,
       p.provider_ref, p.failure_reason, r.show_id, r.channel,
       (SELECT count(*) FROM reservation_seats rs WHERE rs.reservation_id = p.reservation_id)
         AS seats
FROM payments p JOIN reservations r ON r.id = p.reservation_id
WHERE p.status IN ('pending', 'refunding') AND p.created_at <= %(before)s
ORDER BY p.created_at LIMIT %(limit)s
"""

# A confirmed reservation's tickets, in seat-map order.
TICKETS = """
SELECT rs.ticket_code AS code, rs.seat_id, s.label AS seat_label, rs.seat_type, rs.price_minor,
       rs.checked_in_at
FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
WHERE rs.reservation_id = %(rid)s AND rs.ticket_code IS NOT NULL
ORDER BY s.grid_row, s.grid_col
"""
