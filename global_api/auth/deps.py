"""Dependencies of the auth endpoints: client address, key ring, dummy hash."""

from typing import Annotated

from fastapi import Depends, Request

from global_api.config import SettingsDep
from global_api.tokens.keys import KeyRing


def client_address(request: Request, settings: SettingsDep) -> str:
    """The caller's address: the first X-Forwarded-For hop when trusted, else the peer."""
    if settings.trust_forwarded:
        forwarded = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",", 1)[0].strip()
        if first:
            return first[:64]
    return request.client.host if request.client else "unknown"


def get_keyring(request: Request) -> KeyRing:
    """The app's cache of private signing keys."""
    keyring: KeyRing = request.app.state.keyring
    return keyring


def get_dummy_hash(request: Request) -> str:
    """A hash to verify against when the email is unknown (constant-time-ish logins)."""
    dummy: str = request.app.state.dummy_hash
    return dummy


ClientAddress = Annotated[str, Depends(client_address)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
DummyHashDep = Annotated[str, Depends(get_dummy_hash)]
