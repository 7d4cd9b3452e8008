"""The CPU of one line poll in a regional app, in process: answered from memory or by the endpoint.

Run: `.venv/bin/python -m benchmarks.onsale_line --poll-cost`. No server and no database: the
app's waiting rooms are filled by hand, and the ASGI app is called directly, so what is measured
is the app's own work per poll (token from the verifier's cache, ticket, answer).
"""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from common.ids import new_id

REGION = "eu-west"


def cost(rounds: int = 3000) -> dict[str, float]:
    """CPU microseconds of one ticketed poll in process: from memory, and through the endpoint."""
    return asyncio.run(_cost(rounds))


async def _cost(rounds: int) -> dict[str, float]:
    from starlette.types import Message

    from harness.tokens import TestIssuer
    from regional_api.config import RegionalSettings
    from regional_api.main import create_app
    from regional_api.onsale import passes
    from regional_api.onsale.rooms import Line

    issuer = TestIssuer()
    nowhere = "postgresql://bench@127.0.0.1:9/none"  # the polls need no database
    settings = RegionalSettings(region=REGION, database_url=nowhere, global_api_url=nowhere)
    app = create_app(settings, jwks=issuer.jwks)
    show_id, now = new_id("show", REGION), datetime.now(UTC)
    rooms = app.state.waiting_rooms
    rooms.secret, app.state.pool = b"bench-secret", None
    rooms.lines[show_id] = Line(now, True, 0, 2000, 10, 25.0, 100.0, False, 300, 20.0, 1e12)
    ticket = passes.issue_ticket(
        rooms.secret, show_id=show_id, user_id="user-1", number=passes.LATER + 500
    )
    headers = [
        (b"authorization", issuer.headers(sub="user-1")["Authorization"].encode()),
        (b"x-line-ticket", ticket.encode()),
    ]
    scope: dict[str, Any] = {"type": "http", "method": "GET", "headers": headers}
    scope |= {"path": f"/shows/{show_id}/line"}
    scope |= {"query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1"}
    scope |= {"client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "asgi": {"version": "3.0"}}
    scope["app"] = app  # what Starlette sets before its middleware stack

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"poll answered {message['status']}")

    await app(dict(scope), receive, send)  # builds the middleware stack
    # The stack is ServerErrorMiddleware, then LinePolls, then the rest: skip LinePolls.
    inner = app.middleware_stack.app.app  # type: ignore[union-attr]
    costs = {}
    for name, target in (("from memory", app), ("through the endpoint", inner)):
        started = time.process_time()
        for _ in range(rounds):
            await target(dict(scope), receive, send)
        costs[name] = round((time.process_time() - started) / rounds * 1e6, 1)
    return costs
