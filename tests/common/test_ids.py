"""Resource ids: region-carrying, well-formed, unguessable."""

import pytest

from common.ids import KINDS, is_local, new_id, parse_id, region_of

ALPHABET = set("0123456789abcdefghjkmnpqrstvwxyz")


def test_a_new_id_names_its_kind_and_region_and_parses_back() -> None:
    """Every kind, a region with a dash: the id says both, and is local to that region only."""
    for kind in KINDS:
        value = new_id(kind, "eu-west")
        assert parse_id(value) == (kind, "eu-west")
        assert region_of(value) == "eu-west"
        assert is_local(value, kind, "eu-west")
        assert not is_local(value, kind, "us-east")


def test_the_random_part_is_twelve_symbols_of_the_alphabet_all_used_and_never_repeated() -> None:
    """60 random bits in 12 base32 symbols: 20,000 ids are distinct and use all 32 symbols."""
    tails = [new_id("res", "eu-west").rsplit("-", 1)[1] for _ in range(20_000)]
    assert len(set(tails)) == len(tails)
    assert all(len(tail) == 12 and set(tail) <= ALPHABET for tail in tails)
    for position in range(12):  # every position takes every symbol: no bit left unused
        assert {tail[position] for tail in tails} == ALPHABET


@pytest.mark.parametrize(("kind", "region"), [("user", "eu-west"), ("res", "EU"), ("res", "-x")])
def test_an_unknown_kind_or_a_malformed_region_is_refused(kind: str, region: str) -> None:
    """Ids are made only for known kinds and well-formed region codes."""
    with pytest.raises(ValueError, match=r"unknown id kind|bad region code"):
        new_id(kind, region)
