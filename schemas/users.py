"""Users: registration, profile, password change and admin management."""

from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints

from schemas.auth import Role
from schemas.base import RequestModel, ResponseModel

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256

# Passwords are taken exactly as typed: no whitespace stripping.
Password = Annotated[
    str,
    StringConstraints(
        strip_whitespace=False, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    ),
]
DisplayName = Annotated[str, Field(min_length=1, max_length=100)]


class UserRegister(RequestModel):
    """Create a customer account."""

    email: EmailStr = Field(max_length=320)
    password: Password
    display_name: DisplayName


class PasswordChange(RequestModel):
    """Change the caller's password; every other session is signed out."""

    current_password: Annotated[
        str, StringConstraints(strip_whitespace=False, min_length=1, max_length=PASSWORD_MAX_LENGTH)
    ]
    new_password: Password


class UserUpdate(RequestModel):
    """Change a user's role, disabled flag or display name (admin)."""

    role: Role | None = None
    disabled: bool | None = None
    display_name: DisplayName | None = None


class StaffCinemasWrite(RequestModel):
    """Replace the cinemas a staff member works for (admin)."""

    cinema_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(max_length=200)


class UserRead(ResponseModel):
    """A user as the user and admins see it."""

    id: str
    email: str
    display_name: str
    role: Role
    disabled: bool
    cinemas: list[str] = []
    created_at: datetime
    updated_at: datetime
