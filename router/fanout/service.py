"""Cross-region reads: ask every region in parallel, each with its own deadline, then merge."""

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from prometheus_client import Counter

from common.errors import AppError
from router.deps import RouterState
from router.upstreams.pool import RegionPool
from router.upstreams.send import NoHealthyEndpoint, Outbound, UpstreamFailed
from schemas.router import FanOutResult

PARTIAL = Counter("router_fanout_partial_total", "Fan-outs missing at least one region", ["kind"])
FANOUTS = Counter("router_fanouts_total", "Fan-out reads", ["kind"])


@dataclass(slots=True)
class RegionAnswer:
    """One region's part of a fan-out: `status` ok | timeout | unavailable | error | rejected."""

    status: str
    items: list[dict[str, Any]] = field(default_factory=list)
    rejection: tuple[int, dict[str, Any]] | None = None


def region_query(params: Sequence[tuple[str, str]], *, limit: int, offset: int) -> str:
    """The query each region gets: enough rows from the start for the merged page."""
    kept = [(k, v) for k, v in params if k not in ("limit", "offset")]
    return urlencode([*kept, ("limit", str(min(limit + offset, 200))), ("offset", "0")])


async def ask_all(
    state: RouterState, *, path: str, headers: list[tuple[bytes, bytes]]
) -> dict[str, RegionAnswer]:
    """GET `path` from every region at once; a region that is down or slow is reported, not waited on."""
    regions = sorted(state.upstreams.regions.items())
    answers = await asyncio.gather(*(_ask(state, pool, path, headers) for _, pool in regions))
    return {code: answer for (code, _), answer in zip(regions, answers, strict=True)}


async def _ask(
    state: RouterState, pool: RegionPool, path: str, headers: list[tuple[bytes, bytes]]
) -> RegionAnswer:
    budget = state.settings.fanout_region_deadline_seconds
    try:
        async with asyncio.timeout(budget):
            request = Outbound(
                method="GET",
                path=path,
                headers=headers,
                body=None,
                repeatable=True,
                deadline=time.monotonic() + budget,
            )
            sent = await state.sender.send(pool, request)
            try:
                status, raw = sent.response.status, await sent.response.read()
            finally:
                sent.done()
    except NoHealthyEndpoint:
        return RegionAnswer("unavailable")
    except UpstreamFailed as exc:
        return RegionAnswer("timeout" if exc.kind == "timeout" else "unavailable")
    except TimeoutError:
        return RegionAnswer("timeout")
    except ConnectionError:
        return RegionAnswer("unavailable")
    return _parse(status, raw)


def _parse(status: int, raw: bytes) -> RegionAnswer:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return RegionAnswer("error")
    if 400 <= status < 500:
        return RegionAnswer("rejected", rejection=(status, body if isinstance(body, dict) else {}))
    if status >= 300:
        return RegionAnswer("error")
    items = body.get("items") if isinstance(body, dict) else body
    if not isinstance(items, list):
        return RegionAnswer("error")
    return RegionAnswer("ok", items=[item for item in items if isinstance(item, dict)])


def merge(
    answers: dict[str, RegionAnswer],
    *,
    kind: str,
    sort_key: str,
    newest_first: bool,
    limit: int,
    offset: int,
) -> FanOutResult:
    """Merge the regions' items in order, or relay a client error every region shares."""
    FANOUTS.labels(kind).inc()
    for answer in answers.values():
        if answer.rejection is not None:
            raise _relayed(*answer.rejection)
    items = [item for answer in answers.values() for item in answer.items]
    keyed = [(_instant(item.get(sort_key)), item) for item in items]
    present = [pair for pair in keyed if pair[0] is not None]
    present.sort(key=lambda pair: pair[0] or 0.0, reverse=newest_first)
    ordered = [item for _, item in present] + [item for key, item in keyed if key is None]
    missing = sorted(code for code, answer in answers.items() if answer.status != "ok")
    if missing:
        PARTIAL.labels(kind).inc()
    return FanOutResult(
        items=ordered[offset : offset + limit],
        regions={code: answer.status for code, answer in answers.items()},
        unavailable_regions=missing,
    )


def _instant(value: Any) -> float | None:
    # Regions may spell UTC as "Z" or "+00:00": compare instants, not strings.
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


_RESERVED = frozenset({"error", "detail", "code", "status", "headers"})


def _relayed(status: int, body: dict[str, Any]) -> AppError:
    extra = {k: v for k, v in body.items() if k not in _RESERVED}
    detail = str(body.get("detail", "rejected by the region"))
    return AppError(detail, code=str(body.get("error", "bad_request")), status=status, **extra)
