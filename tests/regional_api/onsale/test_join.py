"""A join of a line is one statement: an opening brings thousands of them within seconds."""

from datetime import timedelta

import psycopg
import pytest

from tests.regional_api.factories import ShowSeed
from tests.regional_api.onsale.test_waiting_room import announce, join
from tests.regional_api.served import Live

# The statements of a join (and any other read of the line): they name the line or its functions.
LINE_STATEMENTS = """
SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel
  AND (query LIKE '%%line_entries%%' OR query LIKE '%%join_%%')
"""


def line_statements(dsn: str) -> int:
    """Top-level statements run so far that read or join a line."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            row = conn.execute(LINE_STATEMENTS).fetchone()
        except psycopg.errors.ObjectNotInPrerequisiteState:
            pytest.skip("pg_stat_statements is not loaded on this server")
    return int(row[0]) if row else 0


def test_a_join_is_one_statement(live: Live, show: ShowSeed) -> None:
    announce(live, show, opens_in=timedelta(hours=1))  # not open: the admitter reads no line
    join(live, show, 1)  # the first call of a connection may prepare
    before = line_statements(live.dsn)
    first = join(live, show, 2)
    again = join(live, show, 2)  # joining again keeps the place
    assert line_statements(live.dsn) - before == 2
    assert first["state"] == again["state"] == "waiting"
    assert first["line_ticket"] == again["line_ticket"]
    assert again["line_length"] == 2
