"""Pagination shared by every listing, and the key of a listing paged by key."""

import base64
import binascii
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

MAX_PAGE_SIZE = 200


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int = Field(ge=0)
    limit: int = Field(ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(ge=0)


class KeysetPage(BaseModel, Generic[T]):
    """One page of a listing paged by key: pass `next_before` as `before` for the next one."""

    items: list[T]
    limit: int = Field(ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(ge=0)
    next_before: str | None = Field(
        description="opaque key of the last item; null on the last page"
    )


def encode_cursor(created_at: datetime, item_id: str) -> str:
    """The opaque key of an item, by (created_at, id)."""
    raw = f"{created_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) of a key made by `encode_cursor`; ValueError if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor") from exc
    at, sep, item_id = raw.partition("|")
    moment = datetime.fromisoformat(at)
    # Only keys `encode_cursor` could have made: an id is short and printable (no NUL).
    if not sep or not 0 < len(item_id) <= 100 or not item_id.isprintable() or not moment.tzinfo:
        raise ValueError("not a cursor")
    return moment, item_id
