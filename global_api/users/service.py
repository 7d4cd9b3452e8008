"""Users: create, look up, profile reads, password changes and the bootstrap admin."""

import logging
import uuid
from collections.abc import Sequence

from argon2 import PasswordHasher
from prometheus_client import Counter
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFound, Unauthorized
from global_api.users.models import StaffCinema, User
from global_api.users.passwords import hash_password, verify_password
from schemas.auth import Role
from schemas.users import UserRead

log = logging.getLogger("global_api.users")

REGISTRATIONS = Counter("global_registrations_total", "Customer accounts registered")
PASSWORD_CHANGES = Counter("global_password_changes_total", "Passwords changed", ["outcome"])


def new_user_id() -> str:
    """Make a fresh user id."""
    return f"user-{uuid.uuid4().hex}"


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password_hash: str,
    display_name: str,
    role: Role = Role.customer,
) -> User:
    """Insert a user; a duplicate email (any case) fails on the unique index."""
    stmt = (
        insert(User)
        .values(
            id=new_user_id(),
            email=email,
            password_hash=password_hash,
            display_name=display_name,
            role=role.value,
        )
        .returning(User)
    )
    user = (await session.execute(stmt)).scalar_one()
    if role is Role.customer:
        REGISTRATIONS.inc()
    log.info("user created", extra={"fields": {"user_id": user.id, "role": role.value}})
    return user


async def get_user(session: AsyncSession, user_id: str) -> User:
    """The user with id `user_id`, or 404."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return user


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with this email in any letter case, if any."""
    stmt = select(User).where(func.lower(User.email) == email.strip().lower())
    return (await session.execute(stmt)).scalar_one_or_none()


async def cinemas_of(session: AsyncSession, user_id: str) -> list[str]:
    """The cinema ids a user is assigned to, sorted."""
    stmt = select(StaffCinema.cinema_id).where(StaffCinema.user_id == user_id)
    return sorted((await session.execute(stmt)).scalars())


async def cinemas_by_user(session: AsyncSession, user_ids: Sequence[str]) -> dict[str, list[str]]:
    """The cinema ids of several users at once."""
    result: dict[str, list[str]] = {user_id: [] for user_id in user_ids}
    if not user_ids:
        return result
    stmt = (
        select(StaffCinema.user_id, StaffCinema.cinema_id)
        .where(StaffCinema.user_id.in_(user_ids))
        .order_by(StaffCinema.cinema_id)
    )
    for user_id, cinema_id in await session.execute(stmt):
        result[user_id].append(cinema_id)
    return result


async def read_user(session: AsyncSession, user: User) -> UserRead:
    """The wire form of a user, with its cinema assignments."""
    cinemas = await cinemas_of(session, user.id)
    return UserRead.model_validate(user).model_copy(update={"cinemas": cinemas})


async def set_password_hash(session: AsyncSession, *, user_id: str, password_hash: str) -> None:
    """Store a new password hash."""
    stmt = (
        update(User)
        .where(User.id == user_id)
        .values(password_hash=password_hash, updated_at=func.now())
    )
    await session.execute(stmt)


async def change_password(
    session: AsyncSession,
    *,
    user: User,
    current_password: str,
    new_password: str,
    hasher: PasswordHasher,
) -> None:
    """Replace the password after checking the current one (401 when it is wrong)."""
    if not await verify_password(hasher, user.password_hash, current_password):
        PASSWORD_CHANGES.labels("refused").inc()
        raise Unauthorized("the current password is wrong", code="invalid_credentials")
    new_hash = await hash_password(hasher, new_password)
    await set_password_hash(session, user_id=user.id, password_hash=new_hash)
    PASSWORD_CHANGES.labels("ok").inc()


async def ensure_admin(
    session: AsyncSession, *, email: str, password: str, hasher: PasswordHasher
) -> str:
    """Make sure an admin with this email exists (created or promoted); return its id."""
    password_hash = await hash_password(hasher, password)
    # Insert-or-promote in one statement, so concurrent starts cannot create two accounts.
    stmt = (
        pg_insert(User)
        .values(
            id=new_user_id(),
            email=email.strip(),
            password_hash=password_hash,
            display_name="Administrator",
            role=Role.admin.value,
        )
        .on_conflict_do_update(
            index_elements=[func.lower(User.email)],
            set_={"role": Role.admin.value, "disabled": False, "updated_at": func.now()},
        )
        .returning(User.id)
    )
    user_id: str = (await session.execute(stmt)).scalar_one()
    log.info("admin ensured", extra={"fields": {"user_id": user_id}})
    return user_id


async def admin_exists(session: AsyncSession) -> bool:
    """Tell whether any enabled admin exists."""
    stmt = select(User.id).where(User.role == Role.admin.value, User.disabled.is_(False)).limit(1)
    return (await session.execute(stmt)).first() is not None
