"""`/users/me`: the caller's own profile and password; `/users/lookup` for customer service."""

from typing import Annotated

from fastapi import APIRouter, Query

from common.auth import StaffClaims
from common.errors import NotFound
from global_api.auth.deps import KeyRingDep
from global_api.auth.service import issue_pair
from global_api.config import SettingsDep
from global_api.db import SessionDep
from global_api.tokens.refresh import revoke_user_tokens
from global_api.users import service
from global_api.users.deps import CurrentUser
from global_api.users.passwords import HasherDep
from schemas.auth import Role
from schemas.tokens import TokenPair
from schemas.users import PasswordChange, UserRead

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
async def read_me(user: CurrentUser, session: SessionDep) -> UserRead:
    """Return the caller's profile."""
    return await service.read_user(session, user)


@router.post("/me/password")
async def change_my_password(
    body: PasswordChange,
    user: CurrentUser,
    session: SessionDep,
    hasher: HasherDep,
    settings: SettingsDep,
    keyring: KeyRingDep,
) -> TokenPair:
    """Change the caller's password, sign out every session, and return a fresh pair."""
    await service.change_password(
        session,
        user=user,
        current_password=body.current_password,
        new_password=body.new_password,
        hasher=hasher,
    )
    await revoke_user_tokens(session, user_id=user.id)
    return await issue_pair(session, user=user, keyring=keyring, settings=settings)


@router.get("/lookup")
async def look_up_by_email(
    claims: StaffClaims,
    session: SessionDep,
    email: Annotated[str, Query(min_length=3, max_length=320)],
) -> UserRead:
    """Find an account by email for customer service (staff: customers only; admins: anyone)."""
    user = await service.find_by_email(session, email)
    # Staff help customers: other staff and admins are not theirs to look up (same 404).
    if user is None or (claims.role is not Role.admin and user.role != Role.customer.value):
        raise NotFound("no customer with this email", code="user_not_found")
    return await service.read_user(session, user)
