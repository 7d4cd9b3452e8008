"""Roles and access-token claims."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    """What a user may do: chain admin, box-office staff or customer."""

    admin = "admin"
    staff = "staff"
    customer = "customer"


ACCESS_TOKEN_AUDIENCE = "cinema-api"
ACCESS_TOKEN_ISSUER = "cinema-global"
TOKEN_ALGORITHM = "EdDSA"


class TokenClaims(BaseModel):
    """The verified claims of an access token."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: str
    aud: str
    sub: str
    role: Role
    cinemas: tuple[str, ...] = ()
    exp: int
    iat: int
    jti: str

    def may_manage(self, cinema_id: str) -> bool:
        """Tell whether this caller may act as staff for `cinema_id`."""
        return self.role is Role.admin or (self.role is Role.staff and cinema_id in self.cinemas)
