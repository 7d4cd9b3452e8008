"""Seat churn: what holds, lapses and sales do to `show_seats` and its indexes, 0006 against head.

Two databases on the growth benchmark's server (migrations up to 0006, and up to head) get the
same churn: 1,000 shows of 100 seats under random ids (as `common/ids.py` makes them), every
seat pair held, four pairs in five sold and the rest lapsed, freed, held again and sold, one
update per statement and a commit every ten, then VACUUM (docs/benchmarks/growth.md).

    .venv/bin/python -m benchmarks.growth --churn
"""

import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from benchmarks.history import load
from common.migrate import upgrade

MIGRATIONS = Path(__file__).resolve().parent.parent / "regional_api" / "migrations"
REVISIONS = ("0006", "head")

# Reservation ids are made up: the churn skips the foreign-key triggers (replica role).
CHURN = """
DO $$
DECLARE i int; j int; k int; sid text; seats bigint[];
BEGIN
  SELECT array_agg(id ORDER BY id) INTO seats FROM seats WHERE hall_id = 'hall-us-east-hist0';
  FOR i IN 0..%(shows)s - 1 LOOP
    sid := 'show-us-east-' || substr(md5('churn' || i), 1, 12);
    INSERT INTO shows (id, movie_id, hall_id, cinema_id, starts_at, ends_at, currency)
    VALUES (sid, 'mov-us-east-hist0', 'hall-us-east-hist0', 'cin-us-east-hist0',
            now() + make_interval(days => 30 + i),
            now() + make_interval(days => 30 + i, hours => 2), 'USD');
    INSERT INTO show_seats (show_id, seat_id, seat_type, price_minor)
    SELECT sid, s, 'standard', 1200 FROM unnest(seats) s ORDER BY s;
    COMMIT;
  END LOOP;
  FOR k IN 1..3 LOOP
    FOR j IN 0..49 LOOP
      CONTINUE WHEN k = 3 AND j %% 5 <> 4;
      FOR i IN 0..%(shows)s - 1 LOOP
        sid := 'show-us-east-' || substr(md5('churn' || i), 1, 12);
        IF k = 1 OR k = 3 THEN
          UPDATE show_seats SET status = 'held', reservation_id = 'res-' || k || '-' || i || '-' || j,
                 held_until = now()
          WHERE show_id = sid AND seat_id IN (seats[2 * j + 1], seats[2 * j + 2]);
        END IF;
        IF k = 2 AND j %% 5 = 4 THEN
          UPDATE show_seats SET status = 'free', reservation_id = NULL, held_until = NULL
          WHERE show_id = sid AND seat_id IN (seats[2 * j + 1], seats[2 * j + 2]);
        ELSIF k >= 2 THEN
          UPDATE show_seats SET status = 'sold', held_until = NULL
          WHERE show_id = sid AND seat_id IN (seats[2 * j + 1], seats[2 * j + 2]);
        END IF;
        IF i %% 10 = 0 THEN COMMIT; END IF;
      END LOOP;
    END LOOP;
    COMMIT;
  END LOOP;
END
$$
"""

SIZES = """
SELECT c.relname, pg_relation_size(c.oid) / 1024 FROM pg_class c
WHERE c.oid = 'show_seats'::regclass
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'show_seats'::regclass)
ORDER BY c.relname
"""


def churn(create: Callable[[str], str], revision: str, shows: int) -> dict[str, str]:
    """Apply the churn on a fresh database at `revision` (`create` makes it from a name); the
    sizes and the HOT share after it."""
    dsn = create(f"churn_{revision}")
    upgrade(MIGRATIONS, dsn, revision)
    with psycopg.connect(dsn, autocommit=True) as conn:
        load(conn, reservations=0)
        conn.execute("SET session_replication_role = replica")
        with psycopg.ClientCursor(conn) as cur:
            cur.execute(CHURN.encode(), {"shows": shows})
        conn.execute("VACUUM show_seats")
        facts = {f"{name} kB": f"{kb:,}" for name, kb in conn.execute(SIZES).fetchall()}
        conn.execute("REINDEX INDEX show_seats_pkey")
        row = conn.execute("SELECT pg_relation_size('show_seats_pkey') / 1024").fetchone()
        assert row is not None
        facts["show_seats_pkey after REINDEX kB"] = f"{row[0]:,}"
    return {"HOT updates": _hot_share(dsn)} | facts


def _hot_share(dsn: str) -> str:
    """HOT updates of show_seats out of all (statistics reach the view within a second)."""
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                " WHERE relname = 'show_seats'"
            ).fetchone()
            assert row is not None
            if row[0] > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
            conn.execute("SELECT pg_stat_clear_snapshot()")
    updates, hot = row
    return f"{hot:,} of {updates:,} ({100 * hot / max(updates, 1):.0f} %)"


def compare(create: Callable[[str], str], shows: int = 1000) -> str:
    """Churn at 0006 and at head: a Markdown table with one column each."""
    results = {rev: churn(create, rev, shows) for rev in REVISIONS}
    names = list(dict.fromkeys(name for facts in results.values() for name in facts))
    lines = ["| | " + " | ".join(REVISIONS) + " |", "|---|" + "---:|" * len(REVISIONS)]
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(results[r].get(name, "-") for r in REVISIONS) + " |"
        )
    return "\n".join(lines)
