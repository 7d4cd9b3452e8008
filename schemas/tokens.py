"""Login, refresh and logout requests, token pairs, and the published signing keys."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from schemas.base import RequestModel, ResponseModel

RefreshTokenText = Annotated[str, Field(min_length=1, max_length=200)]


class LoginRequest(RequestModel):
    """Exchange an email and password for a token pair."""

    email: str = Field(min_length=3, max_length=320)
    password: Annotated[
        str, StringConstraints(strip_whitespace=False, min_length=1, max_length=256)
    ]


class RefreshRequest(RequestModel):
    """Exchange a refresh token for a new pair (the presented one is used up)."""

    refresh_token: RefreshTokenText


class LogoutRequest(RequestModel):
    """Sign out: the refresh token's whole family is revoked."""

    refresh_token: RefreshTokenText


class TokenPair(ResponseModel):
    """An access token (EdDSA JWT) and an opaque, single-use refresh token."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="access-token lifetime in seconds")
    refresh_expires_in: int = Field(description="refresh-token lifetime in seconds")


class Jwks(BaseModel):
    """The public keys that verify access tokens (RFC 7517)."""

    keys: list[dict[str, Any]]


class KeyRotation(ResponseModel):
    """The result of a signing-key rotation."""

    kid: str
    retired: list[str]
