"""Access tokens: short-lived EdDSA JWTs carrying the caller's role and cinemas."""

import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.auth import ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, TOKEN_ALGORITHM, Role


def mint_access_token(
    key: Ed25519PrivateKey,
    *,
    kid: str,
    user_id: str,
    role: Role,
    cinemas: list[str],
    ttl_seconds: int,
) -> str:
    """Sign an access token for a user with the given key."""
    now = int(time.time())
    claims = {
        "iss": ACCESS_TOKEN_ISSUER,
        "aud": ACCESS_TOKEN_AUDIENCE,
        "sub": user_id,
        "role": role.value,
        "cinemas": cinemas if role is Role.staff else [],
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=TOKEN_ALGORITHM, headers={"kid": kid})
