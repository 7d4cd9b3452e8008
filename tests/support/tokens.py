"""A test token issuer: an Ed25519 key, its JWKS and access tokens minted with it."""

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.auth import ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, Role


@dataclass
class TestIssuer:
    """Mints access tokens the way global_api does, with a key the tests control."""

    __test__ = False  # not a test class, despite its name

    kid: str = "test-key-1"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def jwks(self) -> dict[str, Any]:
        """The public JWKS for this issuer's key."""
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [jwk | {"kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def token(
        self,
        sub: str | None = None,
        role: Role = Role.customer,
        cinemas: tuple[str, ...] = (),
        ttl: int = 900,
        **overrides: Any,
    ) -> str:
        """A signed access token; `overrides` replace claims (for attack tests)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ACCESS_TOKEN_ISSUER,
            "aud": ACCESS_TOKEN_AUDIENCE,
            "sub": sub or f"user-{uuid.uuid4().hex[:12]}",
            "role": role.value,
            "cinemas": list(cinemas),
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, **kwargs: Any) -> dict[str, str]:
        """An Authorization header carrying a fresh token."""
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}
