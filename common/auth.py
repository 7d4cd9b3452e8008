"""Offline access-token verification from a cached JWKS, and FastAPI auth dependencies."""

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import jwt
from fastapi import Depends, Request
from prometheus_client import Counter

from common.errors import Forbidden, Unauthorized
from schemas.auth import (
    ACCESS_TOKEN_AUDIENCE,
    ACCESS_TOKEN_ISSUER,
    TOKEN_ALGORITHM,
    Role,
    TokenClaims,
)

log = logging.getLogger("auth")

TOKENS_REJECTED = Counter("auth_tokens_rejected_total", "Access tokens refused", ["reason"])
JWKS_FETCHES = Counter("auth_jwks_fetches_total", "JWKS fetch attempts", ["outcome"])

F = TypeVar("F", bound=Callable[..., Any])

BEARER = "bearer"  # the OpenAPI security scheme of an access token
# Dependencies that read the bearer token, and whether they require one (for OpenAPI only).
_AUTHENTICATING: dict[object, bool] = {}

# GETs a URL: the body of a 200, else raises OSError (e.g. ConnectionError) or ValueError.
Fetch = Callable[[str], Awaitable[bytes]]


class JwksCache:
    """Public keys by `kid`, fetched from global_api and kept when it is down."""

    def __init__(
        self,
        url: str | None = None,
        *,
        jwks: dict[str, Any] | None = None,
        cache_file: Path | None = None,
        min_refetch_seconds: float = 30.0,
        tls: ssl.SSLContext | None = None,
        fetch: Fetch | None = None,
    ) -> None:
        self.url = url
        self.verify: ssl.SSLContext | bool = tls or True  # True: the system's trust store
        self.fetch: Fetch = fetch or self._fetch_httpx  # the router passes its own client
        self.cache_file = cache_file
        self.min_refetch_seconds = min_refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._last_fetch = float("-inf")
        self._lock = asyncio.Lock()
        if jwks is not None:
            self.load(jwks)
        elif cache_file and cache_file.exists():
            self.load(json.loads(cache_file.read_text()))

    @property
    def kids(self) -> list[str]:
        """The key ids currently trusted."""
        return sorted(self._keys)

    def load(self, jwks: dict[str, Any]) -> None:
        """Replace the trusted keys with those of a JWKS document (Ed25519 only)."""
        keys = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
                keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm=TOKEN_ALGORITHM)
        if keys:
            self._keys = keys

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key with id `kid`, if trusted."""
        return self._keys.get(kid)

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the JWKS again (at most once per `min_refetch_seconds` unless forced)."""
        if self.url is None:
            return False
        async with self._lock:
            if not force and time.monotonic() - self._last_fetch < self.min_refetch_seconds:
                return False
            self._last_fetch = time.monotonic()
            try:
                document = json.loads(await self.fetch(self.url))
            except (OSError, ValueError) as exc:
                JWKS_FETCHES.labels("failed").inc()
                log.warning(
                    "jwks fetch failed, keeping cached keys",
                    extra={"fields": {"error": type(exc).__name__}},
                )
                return False
            self.load(document)
            JWKS_FETCHES.labels("ok").inc()
            if self.cache_file:
                self.cache_file.write_text(json.dumps(document))
            return True

    async def refresh_forever(self, interval: float) -> None:
        """Background task: refresh the keys every `interval` seconds."""
        while True:
            await self.refresh(force=True)
            await asyncio.sleep(interval)

    async def _fetch_httpx(self, url: str) -> bytes:
        """The default fetch."""
        import httpx  # here: a process that passes its own client never loads httpx

        try:
            async with httpx.AsyncClient(timeout=2.0, verify=self.verify) as client:
                response = await client.get(url)
                response.raise_for_status()
                return response.content
        except httpx.HTTPError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc


class TokenVerifier:
    """Verifies EdDSA access tokens offline; the algorithm is pinned, never read from the token.

    A verified token is remembered until it expires or its key leaves the JWKS: a customer's
    token comes back with every request, and checking its signature again costs more CPU
    than the rest of a seat hold.
    """

    def __init__(
        self,
        keys: JwksCache,
        *,
        audience: str = ACCESS_TOKEN_AUDIENCE,
        issuer: str = ACCESS_TOKEN_ISSUER,
        leeway: float = 5.0,
        remembered: int = 20_000,
    ) -> None:
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.remembered = remembered
        self._verified: dict[str, tuple[str, TokenClaims]] = {}  # token -> (kid, claims)

    async def verify(self, token: str) -> TokenClaims:
        """Return the claims of a valid token, or raise Unauthorized."""
        known = self._verified.get(token)
        if known is not None:
            kid, claims = known
            if time.time() < claims.exp and self.keys.key(kid) is not None:
                return claims
            del self._verified[token]
        kid, claims = await self._check(token)
        if len(self._verified) >= self.remembered:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (kid, claims)
        return claims

    async def _check(self, token: str) -> tuple[str, TokenClaims]:
        """The key id and the claims of a valid token (signature and claims checked)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _reject("malformed") from None
        if header.get("alg") != TOKEN_ALGORITHM:
            raise _reject("algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _reject("kid")
        key = self.keys.key(kid)
        if key is None and await self.keys.refresh():
            key = self.keys.key(kid)
        if key is None:
            raise _reject("kid")
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=[TOKEN_ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
            )
            if payload["iat"] > time.time() + self.leeway:
                raise jwt.ImmatureSignatureError("issued in the future")
            return kid, TokenClaims.model_validate(payload)
        except jwt.ExpiredSignatureError:
            raise _reject("expired", "token expired") from None
        except (jwt.PyJWTError, ValueError):
            raise _reject("invalid") from None


def _reject(reason: str, detail: str = "invalid token") -> Unauthorized:
    TOKENS_REJECTED.labels(reason).inc()
    return Unauthorized(detail, code="invalid_token" if reason != "expired" else "token_expired")


def authenticates(*, required: bool) -> Callable[[F], F]:
    """Mark a dependency that reads the bearer token, so OpenAPI documents its security."""

    def mark(dependency: F) -> F:
        _AUTHENTICATING[dependency] = required
        return dependency

    return mark


def authentication_of(call: object) -> bool | None:
    """True if `call` requires a bearer token, False if it takes one optionally, else None."""
    return _AUTHENTICATING.get(call)


def bearer_token(request: Request) -> str | None:
    """The bearer token of the request, if any."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'")
    return token.strip()


@authenticates(required=False)
async def optional_claims(request: Request) -> TokenClaims | None:
    """Claims of the caller, or None for an anonymous caller."""
    token = bearer_token(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(token)


@authenticates(required=True)
async def require_claims(
    claims: Annotated[TokenClaims | None, Depends(optional_claims)],
) -> TokenClaims:
    """Claims of the caller; anonymous callers get 401."""
    if claims is None:
        raise Unauthorized()
    return claims


OptionalClaims = Annotated[TokenClaims | None, Depends(optional_claims)]
Claims = Annotated[TokenClaims, Depends(require_claims)]


def require_role(*roles: Role) -> Callable[[TokenClaims], Awaitable[TokenClaims]]:
    """Dependency factory: the caller must hold one of `roles` (403 otherwise)."""
    allowed = frozenset(roles)

    async def dependency(claims: Claims) -> TokenClaims:
        if claims.role not in allowed:
            raise Forbidden()
        return claims

    return dependency


AdminClaims = Annotated[TokenClaims, Depends(require_role(Role.admin))]
StaffClaims = Annotated[TokenClaims, Depends(require_role(Role.admin, Role.staff))]
