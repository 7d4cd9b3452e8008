"""Server settings for `benchmarks.pg_cpu`'s A/B: variants, applying them, what they show.

A variant is applied over PostgreSQL's defaults with ALTER SYSTEM (so the server must start with
no `-c` settings of its own: the command line would win) and a reload, or a restart when a
setting that needs one changes. The background processes' CPU is read by their titles, and the
WAL's counts with the queries below.
"""

import contextlib
import time
from typing import Any

BACKGROUND = ("walwriter", "checkpointer", "background writer")
WAL = "SELECT wal_records, wal_bytes, wal_fpi FROM pg_stat_wal"  # the whole server's
# WAL flushes (fsync or fdatasync); PostgreSQL 18 moved them from pg_stat_wal to pg_stat_io.
WAL_SYNCS = "SELECT wal_sync FROM pg_stat_wal"
WAL_SYNCS_18 = "SELECT sum(fsyncs)::bigint FROM pg_stat_io WHERE object = 'wal'"


def variants(specs: list[str] | None) -> dict[str, dict[str, str]]:
    """`NAME:k=v,k=v` per --settings (`NAME:` alone: PostgreSQL's defaults)."""
    found: dict[str, dict[str, str]] = {}
    for spec in specs or []:
        name, _, pairs = spec.partition(":")
        found[name] = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    return found


def background(master: int) -> dict[str, float]:
    """CPU seconds so far of the server's background processes named in BACKGROUND."""
    from benchmarks.floor_probes import _times, _title
    from benchmarks.holds import children_of

    found: dict[str, float] = {}
    for pid in children_of(master):
        with contextlib.suppress(OSError, IndexError):
            name = _title(pid).removeprefix("postgres: ").strip()
            if name in BACKGROUND:
                found[name] = found.get(name, 0.0) + _times(pid)[0]
    return found


def apply_settings(server: Any, settings: dict[str, str], previous: dict[str, str]) -> int:
    """Make `settings` the server's (ALTER SYSTEM over PostgreSQL's defaults); its master pid.

    Reloads, or restarts when a setting that needs it (wal_buffers, huge_pages) changes.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM RESET ALL")
        for name, value in settings.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
        changed = [
            n for n in settings.keys() | previous.keys() if settings.get(n) != previous.get(n)
        ]
        contexts = conn.execute(
            "SELECT context FROM pg_settings WHERE name = ANY(%s)", (changed,)
        ).fetchall()
        # A token in the same file tells when a new session sees this file's settings (a
        # session's default application_name; ALTER SYSTEM takes no custom names).
        token = f"pgcpu-{time.monotonic_ns()}"
        conn.execute(sql.SQL("ALTER SYSTEM SET application_name = {}").format(sql.Literal(token)))
        conn.execute("SELECT pg_reload_conf()")
    if any(context == "postmaster" for (context,) in contexts):
        server.restart()
    deadline = time.monotonic() + 30
    while shown(server.admin_dsn, ["application_name"]).get("application_name") != token:
        assert time.monotonic() < deadline, "the server did not take the settings"
        time.sleep(0.05)
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])


def shown(admin_dsn: str, names: list[str]) -> dict[str, str]:
    """The values of settings a new session sees."""
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name, true) FROM unnest(%s::text[]) AS name", (names,)
        )
        return dict(rows.fetchall())


def wal_syncs(admin: Any) -> Any:
    """The server's WAL flushes so far."""
    version = int(admin.execute("SHOW server_version_num").fetchone()[0])
    return admin.execute(WAL_SYNCS_18 if version >= 180000 else WAL_SYNCS).fetchone()
