"""The served-app fixtures (`live`, `show`) of tests/regional_api/served.py."""

from tests.regional_api.served import live, show

__all__ = ["live", "show"]
