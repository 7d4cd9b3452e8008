"""The history loader (benchmarks.history): the schema it leaves and the data it makes.

It drops the growing tables' secondary indexes for the load and builds them at the end, so
the database it leaves must have exactly the migrated indexes, valid, and the mix of past
reservations the benchmark documents.
"""

import psycopg

from benchmarks.history import GROWING, HEAVY_USER, load
from tests.support.db import DatabaseFactory

INDEXES = """
SELECT c.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisvalid
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = 'public'::regnamespace ORDER BY 2
"""


def test_the_load_leaves_every_migrated_index_and_the_documented_mix(
    regional_databases: dict[str, DatabaseFactory],
) -> None:
    with (
        regional_databases["us-east"].fresh("history") as dsn,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        migrated = conn.execute(INDEXES).fetchall()
        assert {row[0] for row in migrated} >= set(GROWING)
        history = load(conn, reservations=5_000)
        assert conn.execute(INDEXES).fetchall() == migrated  # same names, definitions, valid
        options = "SELECT relname FROM pg_class WHERE reloptions::text LIKE '%autovacuum%'"
        assert conn.execute(options).fetchall() == []  # autovacuum back on every table
        kinds: dict[str, int] = dict(
            conn.execute(
                "SELECT status || '/' || channel, count(*) FROM reservations GROUP BY 1"
            ).fetchall()
        )
        assert kinds == {
            "confirmed/online": 3_100,
            "confirmed/box_office": 500,
            "canceled/online": 400,
            "expired/online": 1_000,
        }
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM reservation_seats),"
            " (SELECT count(*) FROM show_seats WHERE status = 'sold'),"
            " (SELECT count(*) FROM payments), (SELECT count(*) FROM refunds),"
            " (SELECT count(*) FROM reservations WHERE user_id = %s)",
            (HEAVY_USER,),
        ).fetchone()
        # two seats each; the paid and box-office ones sold; a payment for every paid, box
        # office and canceled one and a tenth of the expired; a refund per canceled one; the
        # heavy customer's one in 997 (k = 0, 997, ... 4985), less one sold at the box office
        assert counts == (10_000, 7_200, 4_100, 400, 5)
        assert history.shows == 125
