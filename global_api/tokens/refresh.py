"""Opaque refresh tokens: issued in families, rotated on every use, reuse revokes the family."""

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import Unauthorized
from global_api.tokens.models import RefreshToken

log = logging.getLogger("global_api.refresh")

REFRESH_REUSE = Counter(
    "global_refresh_token_reuse_total", "Used or revoked refresh tokens presented again"
)


class RefreshTokenReused(Unauthorized):
    """A used or revoked refresh token came back: its family has been revoked."""

    code = "refresh_token_reused"


def token_hash(token: str) -> str:
    """The stored form of a refresh token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Presented:
    """A refresh token that was just used up: who it belongs to and its family."""

    user_id: str
    family_id: str


async def issue_refresh_token(
    session: AsyncSession, *, user_id: str, ttl_seconds: int, family_id: str | None = None
) -> str:
    """Store and return a new refresh token (in a new family unless one is given)."""
    token = secrets.token_urlsafe(32)
    await session.execute(
        insert(RefreshToken).values(
            token_hash=token_hash(token),
            family_id=family_id or uuid.uuid4().hex,
            user_id=user_id,
            expires_at=func.now() + timedelta(seconds=ttl_seconds),
        )
    )
    return token


async def use_refresh_token(session: AsyncSession, *, token: str) -> Presented:
    """Mark a refresh token used, atomically; reuse revokes the family (raise after commit)."""
    digest = token_hash(token)
    # The conditional UPDATE is the race guard: of two concurrent uses only one gets a row.
    used = (
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == digest,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > func.now(),
            )
            .values(used_at=func.now())
            .returning(RefreshToken.user_id, RefreshToken.family_id)
        )
    ).first()
    if used is not None:
        return Presented(user_id=used.user_id, family_id=used.family_id)
    known = (
        await session.execute(
            select(RefreshToken.family_id, RefreshToken.used_at, RefreshToken.revoked_at).where(
                RefreshToken.token_hash == digest
            )
        )
    ).first()
    if known is not None and (known.used_at is not None or known.revoked_at is not None):
        await revoke_family(session, family_id=known.family_id)
        REFRESH_REUSE.inc()
        log.warning(
            "refresh token reuse: family revoked", extra={"fields": {"family": known.family_id}}
        )
        raise RefreshTokenReused("refresh token already used; session revoked")
    raise Unauthorized("invalid or expired refresh token", code="invalid_refresh_token")


async def revoke_family(session: AsyncSession, *, family_id: str) -> int:
    """Revoke every live token of a family; return how many."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(RefreshToken.token_hash)
    )
    return len(result.all())


async def revoke_family_of(session: AsyncSession, *, token: str) -> bool:
    """Revoke the family of a presented token; tell whether the token was known."""
    family = (
        await session.execute(
            select(RefreshToken.family_id).where(RefreshToken.token_hash == token_hash(token))
        )
    ).scalar_one_or_none()
    if family is None:
        return False
    await revoke_family(session, family_id=family)
    return True


async def revoke_user_tokens(session: AsyncSession, *, user_id: str) -> None:
    """Revoke every refresh token of a user (password change, disabling, role change)."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
