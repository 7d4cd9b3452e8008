"""What PostgreSQL spent its time on during a rush: pg_stat_statements and table counters.

`reset` before the rush (with `pg_stat_statements.track = all`, so the statements inside the
line's PL/pgSQL functions are counted too, beside the calls of the functions themselves) and
`top` after it: the statements by total execution time and by calls, and, per table of the
line, rows written, HOT updates, dead rows, vacuums and size (a row updated thousands of times
a second leaves versions behind that every later read of it walks).
"""

from typing import Any

import psycopg
from psycopg.rows import dict_row

TOP = """
SELECT toplevel, calls, round(total_exec_time::numeric, 1) AS total_ms,
  round((total_exec_time / greatest(calls, 1))::numeric, 3) AS mean_ms, rows,
  shared_blks_hit + shared_blks_read AS blocks, wal_records,
  left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY {order} DESC LIMIT %(limit)s
"""

TABLES = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_dead_tup, autovacuum_count,
  autoanalyze_count, pg_relation_size(relid) AS heap_bytes,
  pg_indexes_size(relid) AS index_bytes
FROM pg_stat_user_tables
WHERE relname IN ('onsales', 'line_entries', 'show_seats', 'reservations', 'idempotency_keys')
ORDER BY relname
"""


def reset(dsn: str) -> bool:
    """Count every statement from now on (False: pg_stat_statements is not loaded)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        loaded = conn.execute(
            "SELECT count(*) FROM pg_settings WHERE name = 'pg_stat_statements.track'"
        ).fetchone()
        if not loaded or not loaded[0]:
            return False
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset()")
    return True


def top(dsn: str, limit: int = 15) -> dict[str, Any]:
    """The statements by total execution time and by calls, and the line's tables' counters."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        by_time = conn.execute(TOP.format(order="total_exec_time"), {"limit": limit}).fetchall()
        by_calls = conn.execute(TOP.format(order="calls"), {"limit": limit}).fetchall()
        tables = conn.execute(TABLES).fetchall()
    return {
        "by_total_time": [_plain(row) for row in by_time],
        "by_calls": [_plain(row) for row in by_calls],
        "tables": [_plain(row) for row in tables],
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {name: float(v) if hasattr(v, "as_tuple") else v for name, v in row.items()}
