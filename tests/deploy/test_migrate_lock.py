"""`deploy.migrate` takes the migration advisory lock: concurrent init containers run one at a time."""

import threading
import time

import psycopg
import pytest

from deploy.migrate import LOCK_KEY, main


def _waiting_for_lock(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return row is not None and row[0] > 0


def test_migration_waits_for_the_lock_holder(
    regional_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGIONAL_DATABASE_URL", regional_dsn)
    results: list[int] = []
    with psycopg.connect(regional_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        worker = threading.Thread(target=lambda: results.append(main(["regional"])), daemon=True)
        worker.start()
        deadline = time.monotonic() + 30
        while not _waiting_for_lock(regional_dsn):
            assert time.monotonic() < deadline, "the migration never asked for the lock"
            time.sleep(0.05)
        assert results == []  # still waiting behind the holder
        holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    worker.join(timeout=60)
    assert results == [0]
