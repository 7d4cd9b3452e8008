"""Conditional GETs: strong ETags and the If-None-Match comparison (weak tags match too)."""

import hashlib


def etag_of(body: bytes | str) -> str:
    """A quoted strong ETag computed from a response body (blake2b, 128 bits)."""
    data = body.encode() if isinstance(body, str) else body
    return f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """Tell whether an If-None-Match header names `etag` (quoted) or is `*`."""
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip().removeprefix("W/")
        if tag in ("*", etag):
            return True
    return False
