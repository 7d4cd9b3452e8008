"""User administration: search, role and status changes, staff-to-cinema assignments."""

import logging

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import Conflict, Unprocessable
from global_api.directory.models import Cinema
from global_api.tokens.refresh import revoke_user_tokens
from global_api.users.models import StaffCinema, User
from global_api.users.service import get_user
from schemas.auth import Role
from schemas.users import UserUpdate

log = logging.getLogger("global_api.admin")


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_users(
    session: AsyncSession, *, q: str | None, role: Role | None, limit: int, offset: int
) -> tuple[list[User], int]:
    """Users matching `q` (email or name, any case) and `role`, newest first, and the total."""
    conditions = []
    if q:
        pattern = _like(q.strip())
        conditions.append(or_(User.email.ilike(pattern), User.display_name.ilike(pattern)))
    if role is not None:
        conditions.append(User.role == role.value)
    total = (
        await session.execute(select(func.count()).select_from(User).where(*conditions))
    ).scalar_one()
    stmt = (
        select(User)
        .where(*conditions)
        .order_by(User.created_at.desc(), User.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(stmt)).scalars()), total


async def update_user(
    session: AsyncSession, *, user_id: str, actor_id: str, changes: UserUpdate
) -> User:
    """Apply an admin's changes; a new role signs out and a non-staff role drops cinema assignments."""
    user = await get_user(session, user_id)
    fields = changes.model_dump(exclude_unset=True, exclude_none=True)
    if user.id == actor_id and (
        fields.get("disabled") is True or fields.get("role", Role.admin) is not Role.admin
    ):
        raise Conflict("admins cannot disable or demote themselves", code="cannot_modify_self")
    sign_out = ("role" in fields and fields["role"] != user.role) or (
        fields.get("disabled") is True and not user.disabled
    )
    if "role" in fields:
        user.role = fields["role"].value
    if "disabled" in fields:
        user.disabled = fields["disabled"]
    if "display_name" in fields:
        user.display_name = fields["display_name"]
    user.updated_at = func.now()
    await session.flush()
    await session.refresh(user)
    if user.role != Role.staff.value:
        # Only staff work for chosen cinemas: a demoted member must not keep them for a later
        # promotion back to staff to silently restore.
        await session.execute(delete(StaffCinema).where(StaffCinema.user_id == user.id))
    if sign_out:
        await revoke_user_tokens(session, user_id=user.id)
    log.info("user updated", extra={"fields": {"user_id": user.id, "by": actor_id, **fields}})
    return user


async def assign_cinemas(session: AsyncSession, *, user_id: str, cinema_ids: list[str]) -> None:
    """Replace the cinemas a staff member works for; every id must be in the directory."""
    user = await get_user(session, user_id)
    wanted = sorted(set(cinema_ids))
    found = set((await session.execute(select(Cinema.id).where(Cinema.id.in_(wanted)))).scalars())
    missing = [cinema_id for cinema_id in wanted if cinema_id not in found]
    if missing:
        raise Unprocessable("unknown cinema ids", code="unknown_cinema", cinema_ids=missing)
    await session.execute(delete(StaffCinema).where(StaffCinema.user_id == user.id))
    if wanted:
        rows = [{"user_id": user.id, "cinema_id": cinema_id} for cinema_id in wanted]
        await session.execute(insert(StaffCinema), rows)
    # Tokens carry the cinemas: refreshing picks up the new list within one access-token life.
    log.info("staff cinemas set", extra={"fields": {"user_id": user.id, "cinemas": wanted}})
