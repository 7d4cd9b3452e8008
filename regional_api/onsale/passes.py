"""Admission passes and line tickets: signed, bound to one customer and one show.

A pass is `<expiry epoch>.<HMAC-SHA256 of show, customer and expiry>` under the region's
secret (kept in its database, so every replica checks every replica's passes); it needs no
lookup to check and cannot be moved to another customer or show, or used after its window.

A line ticket is `<line number>.<HMAC-SHA256 of "line", show, customer and number>`: what a
poll of the line shows to be answered from the replica's counters (`onsale/rooms.py`) with no
database round trip, and what the router's watch compares with the line's `admitted_mark`. An
early customer's number is its draw key (below `LATER`, from its join: migration 0011), a later
arrival's `LATER` + its rank. Its own prefix in the MAC keeps a pass from passing for a ticket
and back.
"""

import base64
import hashlib
import hmac
from datetime import UTC, datetime

UNRANKED = "-"  # an older ticket of a customer who came before the opening, unranked till the draw
LATER = 10**12  # a later arrival's line number is this + its rank; draw keys are below it


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


def line_number(*, rank: int | None, draw_key: int | None) -> int | None:
    """A customer's line number: its draw key if it came before the opening, else LATER + rank."""
    if draw_key is not None:
        return draw_key
    return None if rank is None else LATER + rank


def issue_ticket(secret: bytes, *, show_id: str, user_id: str, number: int | None) -> str:
    """The line ticket of a customer in a show's line (`number` None: an unranked one)."""
    text = UNRANKED if number is None else str(number)
    return f"{text}.{_digest(secret, 'line', show_id, user_id, text)}"


def ticket_number(
    secret: bytes, ticket: str | None, *, show_id: str, user_id: str
) -> tuple[bool, int | None]:
    """(valid, line number) of a line ticket for this customer and show; (False, None) if not theirs."""
    if not ticket or not secret:
        return False, None
    text, _, signature = ticket.partition(".")
    if text != UNRANKED and (not text.isdigit() or len(text) > 13):
        return False, None
    if not _same(signature, _digest(secret, "line", show_id, user_id, text)):
        return False, None
    return True, None if text == UNRANKED else int(text)
