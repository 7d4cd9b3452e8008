"""One table and one handler render every database constraint violation as a 4xx error body."""

from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from common.db import fetch_one, plain_dsn, run
from common.errors import install_error_handlers
from harness.live import live_server

# A constraint named like a real one (in a schema of its own), so the table answers for it.
_TABLE = """
CREATE SCHEMA errors_test;
CREATE TABLE errors_test.violations (
  id int, cinema_id text, name text,
  CONSTRAINT uq_halls_cinema_id_name UNIQUE (cinema_id, name),
  CONSTRAINT uq_violations_id UNIQUE (id)
)
"""
_INSERT = "INSERT INTO errors_test.violations (id, cinema_id, name) VALUES (%(id)s, 'c1', %(name)s)"


@pytest.fixture
def api(regional_dsn: str) -> Iterator[httpx.Client]:
    """An app whose endpoints violate constraints on the hot path's psycopg connections."""
    dsn = plain_dsn(regional_dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS errors_test CASCADE")
        conn.execute(_TABLE)
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/rows/{row_id}/{name}")
    async def insert(row_id: int, name: str) -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await run(conn, _INSERT, {"id": row_id, "name": name})
        return {"id": row_id}

    @app.get("/divide/{n}")
    async def divide(n: int) -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            row = await fetch_one(conn, "SELECT 1 / %(n)s AS q", {"n": n})
        return {"q": row.q}

    with live_server(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def test_a_known_constraint_is_answered_with_its_code(api: httpx.Client) -> None:
    assert api.post("/rows/1/Salle 1").status_code == 200
    again = api.post("/rows/2/Salle 1")
    assert again.status_code == 409
    assert again.json()["error"] == "hall_name_taken"


def test_an_unknown_constraint_is_a_plain_conflict(api: httpx.Client) -> None:
    assert api.post("/rows/3/Salle 3").status_code == 200
    again = api.post("/rows/3/Salle 4")
    assert (again.status_code, again.json()["error"]) == (409, "conflict")


def test_a_value_the_database_refuses_is_422(api: httpx.Client) -> None:
    assert api.get("/divide/1").json() == {"q": 1}
    refused = api.get("/divide/0")
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_value")
