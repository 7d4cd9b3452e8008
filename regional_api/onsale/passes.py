"""Admission passes: short-lived, signed, bound to one customer and one show.

A pass is `<expiry epoch>.<HMAC-SHA256 of show, customer and expiry>` under the region's
secret (kept in its database, so every replica checks every replica's passes); it needs no
lookup to check and cannot be moved to another customer or show, or used after its window.
"""

import base64
import hashlib
import hmac
from datetime import UTC, datetime


def _digest(secret: bytes, show_id: str, user_id: str, expires: int) -> str:
    message = f"{show_id}\n{user_id}\n{expires}".encode()
    mac = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue(secret: bytes, *, show_id: str, user_id: str, expires_at: datetime) -> str:
    """The pass of a customer admitted to a show until `expires_at`."""
    expires = int(expires_at.timestamp())
    return f"{expires}.{_digest(secret, show_id, user_id, expires)}"


def check(secret: bytes, token: str | None, *, show_id: str, user_id: str, now: datetime) -> str:
    """Why `token` does not admit this customer to this show now ('' when it does)."""
    if not token:
        return "missing"
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return "malformed"
    expires = int(expires_text)
    if not hmac.compare_digest(signature, _digest(secret, show_id, user_id, expires)):
        return "forged"
    if datetime.fromtimestamp(expires, UTC) <= now:
        return "expired"
    return ""
