"""Housekeeping removes only rows that no longer affect any decision."""

import asyncio

import psycopg

from common.db import make_engine, make_sessionmaker
from global_api.auth.housekeeping import tidy
from global_api.config import GlobalSettings
from tests.global_api.support import GlobalClient


async def _tidy(settings: GlobalSettings) -> None:
    engine = make_engine(settings.database_url, service="test_housekeeping", pool_size=1)
    try:
        await tidy(make_sessionmaker(engine), settings)
    finally:
        await engine.dispose()


def test_tidy_deletes_stale_rows_only(
    api: GlobalClient, settings: GlobalSettings, global_dsn: str
) -> None:
    user = api.register()
    api.login(user["email"])
    api.login(user["email"])
    with psycopg.connect(global_dsn) as conn:
        conn.execute(
            "INSERT INTO login_failures (key, failures, updated_at) VALUES"
            " ('account:old', ARRAY[now() - interval '1 day'], now() - interval '1 day'),"
            " ('account:new', ARRAY[now()], now())"
        )
        conn.execute(
            "UPDATE refresh_tokens SET expires_at = now() - interval '2 days' WHERE token_hash ="
            " (SELECT min(token_hash) FROM refresh_tokens)"
        )
    asyncio.run(_tidy(settings))
    with psycopg.connect(global_dsn) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM login_failures")]
        tokens = conn.execute("SELECT count(*) FROM refresh_tokens").fetchone()
    assert keys == ["account:new"]
    assert tokens == (1,)
