"""One whole local stack (global_api, two regions, router, demo data) shared by the suite."""

from collections.abc import Callable, Iterator

import pytest

from deploy.local.stack import LocalStack
from harness.tokens import TestIssuer
from tests.reliability.kit import Arena, create_arena
from tests.support.stack import running_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this suite's fault tests last within it: they stop and restart parts of the stack."""
    mine = [i for i, item in enumerate(items) if "tests/reliability/" in item.nodeid]
    ordered = sorted((items[i] for i in mine), key=lambda item: "test_faults.py" in item.nodeid)
    for index, item in zip(mine, ordered, strict=True):
        items[index] = item


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    """Start the system on free ports in a temporary directory with the small demo data."""
    with running_stack("reliability", log_level="WARNING") as running:
        yield running


@pytest.fixture(scope="package")
def minter(stack: LocalStack) -> TestIssuer:
    """Token minting with the stack's own signing key (the fast path for many users)."""
    return TestIssuer.from_global_db(stack.dsns["global"])


@pytest.fixture
def new_arena(stack: LocalStack, minter: TestIssuer) -> Callable[..., Arena]:
    """Factory of fresh shows in their own hall (default 10 x 10 = 100 seats)."""

    def make(rows: int = 10, cols: int = 10) -> Arena:
        return create_arena(stack, minter, rows=rows, cols=cols)

    return make
