"""A token issuer for tests and benchmarks: an Ed25519 key, its JWKS and access tokens."""

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.auth import ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, Role


@dataclass
class TestIssuer:
    """Mints access tokens the way global_api does, with a key of the caller's choosing.

    A fresh key for tests that serve its JWKS themselves, or global_api's own active key
    (`from_global_db`): logging 1,000 users in through Argon2id would cost minutes of CPU and
    test nothing the auth suite does not, and the services verify tokens offline, so a token
    signed with the real key is exactly what a logged-in customer presents.
    """

    __test__ = False  # not a test class, despite its name

    kid: str = "test-key-1"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    ttl: int = 900  # seconds a token lives unless `token(ttl=...)` says otherwise

    @classmethod
    def from_global_db(cls, dsn: str, *, ttl: int = 3600) -> "TestIssuer":
        """Load the active signing key of the global database (the one new tokens use)."""
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT kid, private_key_pem FROM signing_keys WHERE retired_at IS NULL"
            ).fetchone()
        assert row is not None, "global_api has no active signing key"
        key = serialization.load_pem_private_key(row[1].encode(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return cls(kid=row[0], key=key, ttl=ttl)

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
        ttl: int | None = None,
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
            "exp": now + (self.ttl if ttl is None else ttl),
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, sub: str | None = None, **kwargs: Any) -> dict[str, str]:
        """An Authorization header carrying a fresh token."""
        return {"Authorization": f"Bearer {self.token(sub, **kwargs)}"}
