"""Registration, login, refresh and logout: the token pair lifecycle."""

import logging

from argon2 import PasswordHasher
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import Forbidden, TooManyRequests, Unauthorized
from global_api.auth import throttle
from global_api.config import GlobalSettings
from global_api.tokens.access import mint_access_token
from global_api.tokens.keys import KeyRing
from global_api.tokens.refresh import issue_refresh_token, use_refresh_token
from global_api.users.models import User
from global_api.users.passwords import hash_password, verify_password
from global_api.users.service import cinemas_of, find_by_email, get_user, set_password_hash
from schemas.auth import Role
from schemas.tokens import TokenPair

log = logging.getLogger("global_api.auth")

LOGINS = Counter("global_logins_total", "Login attempts by outcome", ["outcome"])
TOKENS_ISSUED = Counter("global_tokens_issued_total", "Tokens issued by kind", ["kind"])


class InvalidCredentials(Unauthorized):
    """Wrong email or password (the failure is recorded for throttling)."""

    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("wrong email or password")


def _disabled() -> Forbidden:
    return Forbidden("this account is disabled", code="account_disabled")


async def issue_pair(
    session: AsyncSession,
    *,
    user: User,
    keyring: KeyRing,
    settings: GlobalSettings,
    family_id: str | None = None,
) -> TokenPair:
    """Mint an access token and a refresh token (in `family_id`, or a new family)."""
    kid, key = await keyring.signing_key(session)
    cinemas = await cinemas_of(session, user.id) if user.role == Role.staff else []
    access = mint_access_token(
        key,
        kid=kid,
        user_id=user.id,
        role=Role(user.role),
        cinemas=cinemas,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    refresh = await issue_refresh_token(
        session,
        user_id=user.id,
        ttl_seconds=settings.refresh_token_ttl_seconds,
        family_id=family_id,
    )
    TOKENS_ISSUED.labels("access").inc()
    TOKENS_ISSUED.labels("refresh").inc()
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_in=settings.refresh_token_ttl_seconds,
    )


async def login(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    address: str,
    settings: GlobalSettings,
    hasher: PasswordHasher,
    keyring: KeyRing,
    dummy_hash: str,
) -> TokenPair:
    """Check credentials (throttled per account and address) and issue a token pair."""
    keys = [throttle.account_key(email), throttle.address_key(address)]
    limits = {
        "threshold": settings.login_failure_threshold,
        "window_seconds": settings.login_failure_window_seconds,
    }
    wait = await throttle.retry_after(session, keys=keys, **limits)
    if wait:
        LOGINS.labels("throttled").inc()
        log.warning("login throttled", extra={"fields": {"address": address, "retry_after": wait}})
        raise TooManyRequests("too many failed logins; try again later", retry_after=wait)
    user = await find_by_email(session, email)
    # Unknown emails cost a hash check too, so timing does not reveal which accounts exist.
    ok = await verify_password(hasher, user.password_hash if user else dummy_hash, password)
    if user is None or not ok:
        await throttle.record_failure(session, keys=keys, **limits)
        LOGINS.labels("failed").inc()
        log.info(
            "login failed",
            extra={"fields": {"user_id": user.id if user else None, "address": address}},
        )
        raise InvalidCredentials()
    if user.disabled:
        LOGINS.labels("disabled").inc()
        raise _disabled()
    if hasher.check_needs_rehash(user.password_hash):
        new_hash = await hash_password(hasher, password)
        await set_password_hash(session, user_id=user.id, password_hash=new_hash)
    await throttle.clear_failures(session, key=keys[0])
    LOGINS.labels("ok").inc()
    log.info("login", extra={"fields": {"user_id": user.id}})
    return await issue_pair(session, user=user, keyring=keyring, settings=settings)


async def refresh(
    session: AsyncSession, *, token: str, settings: GlobalSettings, keyring: KeyRing
) -> TokenPair:
    """Use up a refresh token and issue the next pair of its family."""
    presented = await use_refresh_token(session, token=token)
    user = await get_user(session, presented.user_id)
    if user.disabled:
        raise _disabled()
    return await issue_pair(
        session, user=user, keyring=keyring, settings=settings, family_id=presented.family_id
    )
