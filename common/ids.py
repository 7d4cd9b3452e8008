"""Region-carrying resource ids: `<kind>-<region>-<random>`, e.g. `show-eu-west-k3v9q2m8x7p4`."""

import re
import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase: no i, l, o, u
_REGION_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_ID_RE = re.compile(
    r"^(?P<kind>[a-z]+)-(?P<region>[a-z][a-z0-9-]*[a-z0-9])-(?P<rand>[0-9a-z]{12})$"
)

KINDS = frozenset({"cin", "hall", "mov", "show", "res", "pay", "sale"})


def is_region_code(code: str) -> bool:
    """Tell whether `code` is a well-formed region code such as `eu-west`."""
    return bool(_REGION_RE.match(code)) and len(code) <= 32


def new_id(kind: str, region: str) -> str:
    """Make a fresh unguessable id (60 random bits) that names its region."""
    if kind not in KINDS:
        raise ValueError(f"unknown id kind {kind!r}")
    if not is_region_code(region):
        raise ValueError(f"bad region code {region!r}")
    # One draw of 60 bits, 5 to a character (12 calls of `secrets.choice` cost ~50 us a hold).
    bits = secrets.randbits(60)
    rand = "".join(_ALPHABET[(bits >> shift) & 31] for shift in range(0, 60, 5))
    return f"{kind}-{region}-{rand}"


def parse_id(value: str) -> tuple[str, str] | None:
    """Return `(kind, region)` of a well-formed id, or None."""
    match = _ID_RE.match(value)
    if match is None or match["kind"] not in KINDS:
        return None
    return match["kind"], match["region"]


def is_local(value: str, kind: str, region: str) -> bool:
    """Whether `value` is a well-formed id of `kind` in `region` (the one check of "is it ours")."""
    return parse_id(value) == (kind, region)


def region_of(value: str) -> str | None:
    """Return the region carried by an id, or None when the id is malformed."""
    parsed = parse_id(value)
    return parsed[1] if parsed else None
