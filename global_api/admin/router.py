"""`/users` administration (admin only)."""

from typing import Annotated

from fastapi import APIRouter, Query

from common.auth import AdminClaims
from global_api.admin import service
from global_api.db import SessionDep
from global_api.users.service import cinemas_by_user, get_user, read_user
from schemas.auth import Role
from schemas.pagination import MAX_PAGE_SIZE, Page
from schemas.users import StaffCinemasWrite, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["admin"])


@router.get("")
async def list_users(
    _: AdminClaims,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[UserRead]:
    """Search users by email or name, optionally by role."""
    users, total = await service.search_users(session, q=q, role=role, limit=limit, offset=offset)
    cinemas = await cinemas_by_user(session, [user.id for user in users])
    items = [
        UserRead.model_validate(user).model_copy(update={"cinemas": cinemas[user.id]})
        for user in users
    ]
    return Page[UserRead](items=items, total=total, limit=limit, offset=offset)


@router.get("/{user_id}")
async def read_user_by_id(_: AdminClaims, user_id: str, session: SessionDep) -> UserRead:
    """Return one user."""
    return await read_user(session, await get_user(session, user_id))


@router.patch("/{user_id}")
async def update_user(
    claims: AdminClaims, user_id: str, body: UserUpdate, session: SessionDep
) -> UserRead:
    """Change a user's role, disabled flag or display name."""
    user = await service.update_user(session, user_id=user_id, actor_id=claims.sub, changes=body)
    return await read_user(session, user)


@router.put("/{user_id}/cinemas")
async def assign_cinemas(
    _: AdminClaims, user_id: str, body: StaffCinemasWrite, session: SessionDep
) -> UserRead:
    """Replace the cinemas a staff member works for (ids must exist in the directory)."""
    await service.assign_cinemas(session, user_id=user_id, cinema_ids=body.cinema_ids)
    return await read_user(session, await get_user(session, user_id))
