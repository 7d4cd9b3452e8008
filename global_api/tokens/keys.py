"""Ed25519 signing keys: create, rotate, publish, and a cache of loaded private keys."""

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import Counter
from psycopg.types.json import Jsonb
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import run, session_connection
from global_api.tokens.models import SigningKey
from schemas.auth import TOKEN_ALGORITHM

log = logging.getLogger("global_api.keys")

KEY_ROTATIONS = Counter("global_signing_key_rotations_total", "Signing keys rotated")


# The first key, unless another worker's is already active (one active key: a unique index
# on `(true)` where `retired_at` is null, migration 0001).
_INSERT_FIRST_KEY = """
INSERT INTO signing_keys (kid, private_key_pem, public_jwk)
VALUES (%(kid)s, %(private_key_pem)s, %(public_jwk)s)
ON CONFLICT ((true)) WHERE retired_at IS NULL DO NOTHING
"""


def _new_key_values() -> dict[str, Any]:
    private = Ed25519PrivateKey.generate()
    kid = f"k-{secrets.token_hex(8)}"
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk |= {"kid": kid, "alg": TOKEN_ALGORITHM, "use": "sig"}
    return {"kid": kid, "private_key_pem": pem, "public_jwk": jwk}


async def ensure_active_key(session: AsyncSession) -> str:
    """Create a signing key if none is active (race-safe); return the active kid."""
    values = _new_key_values()
    values["public_jwk"] = Jsonb(values["public_jwk"])
    await run(await session_connection(session), _INSERT_FIRST_KEY, values)
    kid = await active_kid(session)
    assert kid is not None
    return kid


async def active_kid(session: AsyncSession) -> str | None:
    """The id of the key that signs new tokens."""
    stmt = select(SigningKey.kid).where(SigningKey.retired_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def rotate_keys(session: AsyncSession) -> tuple[str, list[str]]:
    """Retire the active key and install a new one; return (new kid, retired kids)."""
    retired = (
        await session.execute(
            update(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .values(retired_at=func.now())
            .returning(SigningKey.kid)
        )
    ).scalars()
    retired_kids = list(retired)
    values = _new_key_values()
    await session.execute(pg_insert(SigningKey).values(**values))
    KEY_ROTATIONS.inc()
    log.info("signing key rotated", extra={"fields": {"kid": values["kid"]}})
    return values["kid"], retired_kids


async def published_jwks(session: AsyncSession, *, retired_grace_seconds: int) -> dict[str, Any]:
    """The active key and every retired key whose tokens may still be unexpired."""
    cutoff = func.now() - timedelta(seconds=retired_grace_seconds)
    stmt = (
        select(SigningKey.public_jwk)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > cutoff))
        .order_by(SigningKey.retired_at.desc().nulls_first())
    )
    return {"keys": list((await session.execute(stmt)).scalars())}


@dataclass
class KeyRing:
    """Private keys loaded from the database, by kid (a key never changes once made)."""

    _keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)

    async def signing_key(self, session: AsyncSession) -> tuple[str, Ed25519PrivateKey]:
        """The active kid and its private key (one tiny query; the PEM is parsed once)."""
        kid = await active_kid(session)
        if kid is None:
            kid = await ensure_active_key(session)
        key = self._keys.get(kid)
        if key is None:
            pem = (
                await session.execute(
                    select(SigningKey.private_key_pem).where(SigningKey.kid == kid)
                )
            ).scalar_one()
            loaded = serialization.load_pem_private_key(pem.encode(), password=None)
            assert isinstance(loaded, Ed25519PrivateKey)
            self._keys[kid] = key = loaded
        return kid, key
