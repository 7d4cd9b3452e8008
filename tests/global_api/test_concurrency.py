"""The database, not a prior lookup, decides races: one account per email, one refresh per token."""

import asyncio

import httpx
import psycopg

from tests.global_api.support import PASSWORD, GlobalClient, unique_email


async def _storm(
    base_url: str, method: str, path: str, bodies: list[dict[str, str]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.request(method, path, json=body) for body in bodies)
        )
    return list(responses)


def test_fifty_parallel_registrations_create_one_user(base_url: str, global_dsn: str) -> None:
    email = unique_email()
    bodies = [
        {"email": email if i % 2 else email.upper(), "password": PASSWORD, "display_name": "Eve"}
        for i in range(50)
    ]
    statuses = [
        r.status_code for r in asyncio.run(_storm(base_url, "POST", "/auth/register", bodies))
    ]
    assert statuses.count(201) == 1
    assert statuses.count(409) == 49
    with psycopg.connect(global_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM users WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
    assert row == (1,)


def test_parallel_refreshes_of_one_token_succeed_once(api: GlobalClient, base_url: str) -> None:
    user = api.register()
    tokens = api.login(user["email"])
    bodies = [{"refresh_token": tokens["refresh_token"]} for _ in range(10)]
    responses = asyncio.run(_storm(base_url, "POST", "/auth/refresh", bodies))
    statuses = [response.status_code for response in responses]
    # The row lock serialises them: the first wins, the rest see a used token (reuse).
    assert statuses.count(200) == 1
    assert statuses.count(401) == 9
    # Reuse revoked the family, including the winner's new token.
    winner = next(r for r in responses if r.status_code == 200).json()
    again = api.http.post("/auth/refresh", json={"refresh_token": winner["refresh_token"]})
    assert again.status_code == 401
