"""benchmarks.pg_settings: the A/B's variants reach the server, reloaded or restarted."""

from collections.abc import Iterator

import pytest

from benchmarks.pg_settings import apply_settings, shown, variants
from harness.pg import LocalServer, start_server


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A durable server with no settings of its own, as pg_cpu starts it for an A/B."""
    started = start_server("pg-settings-ab", durable=True, settings={})
    assert isinstance(started, LocalServer)
    yield started
    started.stop()


def test_variants_parse_names_and_pairs() -> None:
    parsed = variants(["pg:", "lz4:wal_compression=lz4,max_wal_size=4GB"])
    assert parsed == {"pg": {}, "lz4": {"wal_compression": "lz4", "max_wal_size": "4GB"}}


def test_a_reloadable_setting_is_applied_and_reset(server: LocalServer) -> None:
    apply_settings(server, {"wal_compression": "lz4"}, {})
    assert shown(server.admin_dsn, ["wal_compression"]) == {"wal_compression": "lz4"}
    apply_settings(server, {}, {"wal_compression": "lz4"})
    assert shown(server.admin_dsn, ["wal_compression"]) == {"wal_compression": "off"}


def test_a_setting_that_needs_a_restart_gets_one(server: LocalServer) -> None:
    before = server.data_dir.joinpath("postmaster.pid").read_text().split()[0]
    master = apply_settings(server, {"wal_buffers": "16MB"}, {})
    assert str(master) != before
    assert shown(server.admin_dsn, ["wal_buffers"]) == {"wal_buffers": "16MB"}
    apply_settings(server, {}, {"wal_buffers": "16MB"})
    assert shown(server.admin_dsn, ["wal_buffers"]) == {"wal_buffers": "4MB"}
