"""Dependencies of the auth endpoints: client address, key ring, dummy hash."""

from typing import Annotated

from fastapi import Depends, Request

from global_api.tokens.keys import KeyRing


def client_address(request: Request) -> str:
    """The caller's address: the socket peer, or the client the router's hop names.

    uvicorn's `--forwarded-allow-ips` (the router's addresses only) decides whose
    X-Forwarded-For is believed; a header from any other peer never reaches this.
    """
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
