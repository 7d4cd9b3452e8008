"""Shared kit of the reliability suite: sizes and a test show of its own."""

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from deploy.local.stack import LocalStack
from harness.tokens import TestIssuer
from schemas.auth import Role

REGION = "eu-west"
CARD_OK = "4242424242424242"


def size(name: str, default: int) -> int:
    """A suite size, overridable by `RELIABILITY_<NAME>` (the soak mode scales these up)."""
    return int(os.environ.get(f"RELIABILITY_{name.upper()}", default))


@dataclass
class Arena:
    """A show of its own hall, made for one test: nobody else touches its seats."""

    cinema_id: str
    hall_id: str
    show_id: str
    seat_ids: list[int] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)


def region_url(stack: LocalStack, region: str = REGION) -> str:
    """The router's base URL for region-scoped collections."""
    return f"{stack.router_url}/regions/{region}"


def eu_cinema(stack: LocalStack) -> str:
    """The demo cinema of eu-west (the staff member's cinema)."""
    return stack.credentials["staff"]["cinema_id"]


def create_arena(stack: LocalStack, minter: TestIssuer, *, rows: int = 10, cols: int = 10) -> Arena:
    """Create a `rows` x `cols` hall in the eu-west demo cinema and a show in it tomorrow."""
    admin = minter.headers("reliability-admin", role=Role.admin)
    cinema_id = eu_cinema(stack)
    base = stack.router_url
    with httpx.Client(timeout=30.0, headers=admin) as client:
        layout = {"name": f"R-{uuid.uuid4().hex[:8]}", "rows": ["A" * cols] * rows}
        hall = _ok(client.post(f"{base}/cinemas/{cinema_id}/halls", json=layout))
        movie = _ok(
            client.post(
                f"{region_url(stack)}/movies",
                json={"title": f"Storm {uuid.uuid4().hex[:6]}", "duration_minutes": 90},
            )
        )
        starts = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        show_body = {
            "movie_id": movie["id"],
            "starts_at": starts.isoformat(),
            "prices": {"standard": 1000},
        }
        show = _ok(client.post(f"{base}/halls/{hall['id']}/shows", json=show_body))
        seat_map = _ok(client.get(f"{base}/shows/{show['id']}/seats"))
    by_row: dict[int, list[int]] = {}
    for seat in seat_map["seats"]:
        by_row.setdefault(seat["grid_row"], []).append(seat["seat_id"])
    ordered = [sorted(ids) for _, ids in sorted(by_row.items())]
    seat_ids = [seat for row in ordered for seat in row]
    return Arena(cinema_id, hall["id"], show["id"], seat_ids, ordered)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), (response.status_code, response.text[:300])
    return response.json()
