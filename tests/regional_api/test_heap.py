"""The heap a replica has at startup stays out of the collector's walks while it serves.

A full collection walked every object of the app and its libraries (70-100 ms once per ~1,000
holds), and young collections ran every ~10 holds at 16 in flight: docs/benchmarks/floor.md,
"Seventh round (appratio)". These tests pin the setting, not its timing.
"""

import gc

from common.heap import YOUNG_GC_THRESHOLD, long_lived_heap
from harness.tokens import TestIssuer
from tests.regional_api.served import live_app


class _Kept:
    """Instances are tracked by the collector."""


def test_the_heap_is_frozen_and_young_collections_rarer_only_inside_the_block() -> None:
    before = gc.get_threshold()
    kept = _Kept()  # a collectable object alive at the start

    with long_lived_heap():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])
        assert not any(o is kept for o in gc.get_objects())  # frozen: no generation lists it

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects())


def test_replicas_serving_at_once_leave_the_setting_to_the_last_one_stopping() -> None:
    before = gc.get_threshold()
    first, second = long_lived_heap(), long_lived_heap()

    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
    second.__exit__(None, None, None)

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_serving_replica_runs_with_its_heap_frozen(regional_dsn: str, issuer: TestIssuer) -> None:
    before = gc.get_threshold()

    with live_app(regional_dsn, issuer) as live:
        assert live.client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
