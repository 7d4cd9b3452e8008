"""The SQL of the payment path, run on psycopg (benchmarks/holds.py `hold_pay` measures it)."""

from common.db import raw_sql

# benchmarks/holds.py hold_pay: lock the reservation, look for a completed payment, price its
# seats and insert the pending payment in one round trip (who may pay is checked on its answer;
# a refusal rolls the insert back). FOR UPDATE returns the row's newest
# version after waiting, so a payment that won a race is seen through the status it confirmed.
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
opened AS (
  INSERT INTO payments (id, reservation_id, method, status, amount_minor, currency, created_at)
  SELECT :pid, r.id, :method, 'pending', due.amount, r.currency, :now
  FROM r, paid, due
  WHERE r.status IN ('held', 'expired') AND NOT paid.paid
  RETURNING id)
SELECT r.show_id, r.cinema_id, r.user_id, r.status, r.currency, paid.paid, due.amount, due.seats
FROM r, paid, due
""")

# benchmarks/holds.py hold_pay: the charge's outcome, written once it is known.
FINISH_PAYMENT = raw_sql("""
UPDATE payments SET status = :status, provider_ref = :ref, failure_reason = :reason,
                    completed_at = :completed_at
WHERE id = :pid
""")

# A savepoint around the confirmation: a refused charge rolls the sale back and keeps the hold.
# It is never released: COMMIT keeps it, and the request's transaction ends right after.
SAVEPOINT = raw_sql("SAVEPOINT payment_confirm")
ROLLBACK_TO_SAVEPOINT = raw_sql("ROLLBACK TO SAVEPOINT payment_confirm")
