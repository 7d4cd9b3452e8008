"""A replica killed while customers wait: nobody loses their place, nobody is admitted twice.

Real processes on one database: two replicas admit from the same line (one at a time, by the
on-sale's row lock); one is SIGKILLed mid-admission and the other carries on.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from deploy.local.processes import ServiceProcess
from harness.pg import free_port
from harness.tokens import TestIssuer
from schemas.auth import Role
from tests.regional_api.factories import query, seed_show
from tests.support.poll import wait_until

pytestmark = pytest.mark.slow

CUSTOMERS = 24


def entries(dsn: str, show_id: str) -> dict[str, tuple[int | None, datetime | None]]:
    """Each customer's rank and admission time."""
    rows = query(
        dsn, "SELECT user_id, rank, admitted_at FROM line_entries WHERE show_id = %s", show_id
    )
    return {user: (rank, admitted) for user, rank, admitted in rows}


def test_killing_a_replica_loses_no_place_and_admits_nobody_twice(
    regional_dsn: str, issuer: TestIssuer, tmp_path: Path
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks))
    env = {
        "REGIONAL_REGION": "eu-west",
        "REGIONAL_DATABASE_URL": regional_dsn,
        "REGIONAL_GLOBAL_API_URL": "http://127.0.0.1:9",
        "REGIONAL_JWKS_CACHE_FILE": str(jwks),
    }
    replicas = [
        ServiceProcess(name, "regional_api", free_port(), env, tmp_path / f"{name}.log")
        for name in ("eu-west-a", "eu-west-b")
    ]
    show = seed_show(regional_dsn)
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        a = replicas[0]
        opening = datetime.now(UTC) + timedelta(seconds=3)
        body = {"opens_at": opening.isoformat(), "max_admit_per_second": 4}
        admin = issuer.headers(sub="user-admin", role=Role.admin)
        put = httpx.put(f"{a.url}/shows/{show.show_id}/onsale", json=body, headers=admin)
        assert put.status_code == 200, put.text
        for n in range(CUSTOMERS):  # half before the opening, half after, on both replicas
            if n == CUSTOMERS // 2:
                wait_until(lambda: datetime.now(UTC) > opening)
            replica = replicas[n % 2]
            url = f"{replica.url}/shows/{show.show_id}/line"
            assert httpx.post(url, headers=issuer.headers(sub=f"user-{n}")).status_code == 200

        wait_until(
            lambda: sum(1 for _, t in entries(regional_dsn, show.show_id).values() if t) >= 2
        )
        a.kill()
        before = entries(regional_dsn, show.show_id)
        # The other replica carries on: every seat (6) gets an admitted customer.
        wait_until(
            lambda: sum(1 for _, t in entries(regional_dsn, show.show_id).values() if t) >= 6
        )
        after = entries(regional_dsn, show.show_id)
        a.start().wait_ready()
        time.sleep(2)  # both admit again: the line must not move past the seats' room
        final = entries(regional_dsn, show.show_id)
    finally:
        for replica in replicas:
            replica.kill()

    ranks = sorted(rank for rank, _ in final.values() if rank is not None)
    assert ranks == list(range(1, CUSTOMERS + 1))  # everyone ranked once, no place lost
    assert {user: rank for user, (rank, _) in before.items()} == {
        user: rank for user, (rank, _) in final.items()
    }
    for user, (_, admitted) in before.items():  # an admission is never redone
        if admitted is not None:
            assert final[user][1] == admitted
    admitted_ranks = sorted(rank for rank, t in final.values() if t is not None and rank)
    assert admitted_ranks == list(range(1, len(admitted_ranks) + 1))  # in line order
    assert len(admitted_ranks) == 6 == len([1 for _, t in after.values() if t])
    through = query(
        regional_dsn, "SELECT admitted_through FROM onsales WHERE show_id = %s", show.show_id
    )
    assert through == [(6,)]
    late = [final[f"user-{n}"][0] for n in range(CUSTOMERS // 2, CUSTOMERS)]
    assert late == list(range(CUSTOMERS // 2 + 1, CUSTOMERS + 1))  # arrival order after opening
