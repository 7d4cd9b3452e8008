"""benchmarks.pg_cpu on a server without pg_stat_statements: WAL work still counted, the rest left out."""

from collections.abc import Iterator

import psycopg
import pytest

from benchmarks.pg_cpu import ROOT, _prepare, measure, statement_stats, summary
from benchmarks.pg_settings import wal_syncs
from harness.pg import LocalServer, start_server


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A durable server that did not load pg_stat_statements (as a build without it runs)."""
    started = start_server("pg-cpu-nostats", durable=True, statement_stats=False, settings={})
    assert isinstance(started, LocalServer)
    yield started
    started.stop()


def test_the_extension_is_not_created_where_it_is_not_loaded(server: LocalServer) -> None:
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        assert statement_stats(conn) is False
        found = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        assert found.fetchone() is None
        assert wal_syncs(conn) is not None


def test_a_run_counts_the_wal_and_leaves_the_statement_work_out(server: LocalServer) -> None:
    dsns = _prepare(server, {"this": ROOT}, 4, 100)
    master = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
        row = measure(master, dsns["this"], "pgcpu_this", ROOT, "hold 1 seat", 0.5, 2, None, admin)
    assert row["ops"] > 0
    assert row["wal_records"] > 0  # at least the hold's rows, from pg_stat_wal
    assert "buffer_hits" not in row
    table = summary([{"op": "hold 1 seat", "target": "this"} | row], ["hold 1 seat"], ["this"])
    assert table.splitlines()[-1].split(" | ")[10] == "-"  # buffer hits/op
