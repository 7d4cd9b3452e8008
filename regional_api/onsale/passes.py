"""Admission passes and line tickets: signed, bound to one customer and one show.

A pass is `<expiry epoch>.<HMAC-SHA256 of show, customer and expiry>` under the region's
secret (kept in its database, so every replica checks every replica's passes); it needs no
lookup to check and cannot be moved to another customer or show, or used after its window.

A line ticket is `<rank or ->.<HMAC-SHA256 of "line", show, customer and rank>`: what a poll of
the line shows to be answered from the replica's counters (`onsale/rooms.py`) with no database
round trip. Its own prefix in the MAC keeps a pass from passing for a ticket and back.
"""

import base64
import hashlib
import hmac
from datetime import UTC, datetime

UNRANKED = "-"  # a ticket of a customer who came before the opening: no rank until the draw


def _digest(secret: bytes, *parts: str) -> str:
    mac = hmac.new(secret, "\n".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _same(signature: str, expected: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a header may carry them).
    return hmac.compare_digest(signature.encode(), expected.encode())


def issue(secret: bytes, *, show_id: str, user_id: str, expires_at: datetime) -> str:
    """The pass of a customer admitted to a show until `expires_at`."""
    expires = int(expires_at.timestamp())
    return f"{expires}.{_digest(secret, show_id, user_id, str(expires))}"


def check(secret: bytes, token: str | None, *, show_id: str, user_id: str, now: datetime) -> str:
    """Why `token` does not admit this customer to this show now ('' when it does)."""
    if not token:
        return "missing"
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return "malformed"
    expires = int(expires_text)
    if not _same(signature, _digest(secret, show_id, user_id, str(expires))):
        return "forged"
    if datetime.fromtimestamp(expires, UTC) <= now:
        return "expired"
    return ""


def issue_ticket(secret: bytes, *, show_id: str, user_id: str, rank: int | None) -> str:
    """The line ticket of a customer in a show's line (`rank` None before the draw)."""
    text = UNRANKED if rank is None else str(rank)
    return f"{text}.{_digest(secret, 'line', show_id, user_id, text)}"


def ticket_rank(
    secret: bytes, ticket: str | None, *, show_id: str, user_id: str
) -> tuple[bool, int | None]:
    """(valid, rank) of a line ticket for this customer and show; (False, None) if not theirs."""
    if not ticket or not secret:
        return False, None
    text, _, signature = ticket.partition(".")
    if text != UNRANKED and (not text.isdigit() or len(text) > 9):
        return False, None
    if not _same(signature, _digest(secret, "line", show_id, user_id, text)):
        return False, None
    return True, None if text == UNRANKED else int(text)
