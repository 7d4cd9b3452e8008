"""The signed-in user, loaded from the database."""

from typing import Annotated

from fastapi import Depends

from common.auth import Claims
from common.errors import Forbidden, Unauthorized
from global_api.db import SessionDep
from global_api.users.models import User


async def current_user(claims: Claims, session: SessionDep) -> User:
    """The caller's account; 401 if it no longer exists, 403 if disabled."""
    user = await session.get(User, claims.sub)
    if user is None:
        raise Unauthorized("the account no longer exists", code="invalid_token")
    if user.disabled:
        raise Forbidden("this account is disabled", code="account_disabled")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
