"""Cross-region reads answered by the router itself: `/me/reservations`, `/search/shows`."""

import contextlib
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from common.auth import Claims, StaffClaims
from common.observability import request_id_var
from router.deps import RouterState, StateDep
from router.fanout.service import ask_all, merge, region_query
from schemas.pagination import MAX_PAGE_SIZE, encode_cursor
from schemas.router import FanOutResult

router = APIRouter(tags=["cross-region"])

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Offset = Annotated[int, Query(ge=0, le=MAX_PAGE_SIZE)]
UserId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _headers(
    request: Request, state: RouterState, *, with_client: bool = True
) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-request-id", request_id_var.get().encode("latin-1"))]
    if authorization := request.headers.get("authorization"):
        headers.append((b"authorization", authorization.encode("latin-1")))
    if not with_client:
        return headers
    peer = request.client.host if request.client else None
    if client := state.trusted.client(peer, request.headers.getlist("x-forwarded-for")):
        headers.append((b"x-forwarded-for", client.encode("latin-1")))
    return headers


async def _merged(
    request: Request,
    state: RouterState,
    headers: list[tuple[bytes, bytes]],
    path: str,
    kind: str,
    page: tuple[int, int],
    *,
    sort_key: str = "created_at",
    newest_first: bool = True,
) -> FanOutResult:
    """Ask every region for `path` with the request's filters and merge one page of answers."""
    limit, offset = page
    query = region_query(list(request.query_params.multi_items()), limit=limit, offset=offset)
    answers = await ask_all(state, path=f"{path}?{query}", headers=headers)
    return merge(
        answers,
        kind=kind,
        sort_key=sort_key,
        newest_first=newest_first,
        limit=limit,
        offset=offset,
    )


@router.get("/me/reservations")
async def my_reservations(
    request: Request, state: StateDep, _: Claims, limit: Limit = 50, offset: Offset = 0
) -> FanOutResult:
    """List the caller's reservations in every region, newest first, paged by key (`before`).

    Each region gets the same `before` key and answers from it; the next key is the last
    item's, so a page never depends on how deep the customer's history is.
    """
    headers = _headers(request, state)
    result = await _merged(
        request, state, headers, "/me/reservations", "me_reservations", (limit, offset)
    )
    return _keyed(result, limit)


def _keyed(result: FanOutResult, limit: int) -> FanOutResult:
    """A full page of reservations carries the key of its last item, to ask for the next."""
    if len(result.items) == limit:
        last = result.items[-1]
        with contextlib.suppress(KeyError, TypeError, ValueError):
            at = datetime.fromisoformat(last["created_at"])
            result.next_before = encode_cursor(at, str(last["id"]))
    return result


@router.get("/router/customers/{user_id}/reservations")
async def customer_reservations(
    request: Request,
    state: StateDep,
    user_id: UserId,
    _: StaffClaims,
    limit: Limit = 50,
    offset: Offset = 0,
) -> FanOutResult:
    """List a customer's reservations in every region for customer service (staff: their cinemas)."""
    # A staff look-up needs no client address upstream (no per-address limit applies to it).
    headers = _headers(request, state, with_client=False)
    path = f"/customers/{user_id}/reservations"
    result = await _merged(request, state, headers, path, "customer_reservations", (limit, offset))
    return _keyed(result, limit)


@router.get("/search/shows")
async def search_shows(
    request: Request, state: StateDep, limit: Limit = 50, offset: Offset = 0
) -> FanOutResult:
    """Search shows in every region (same filters as a region's `/shows`), soonest first."""
    headers = _headers(request, state)
    return await _merged(
        request,
        state,
        headers,
        "/shows",
        "search_shows",
        (limit, offset),
        sort_key="starts_at",
        newest_first=False,
    )
