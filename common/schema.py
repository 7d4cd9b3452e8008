"""Tell whether a database is at this code's migration head, without loading Alembic.

A service process only checks the revision; importing Alembic (and its DDL for every dialect,
Mako, Pygments) would cost each process start about 0.25 s of CPU for that, so the revisions are
read from the migration files' `revision` and `down_revision` assignments instead.
"""

import ast
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.observability import ReadinessCheck


class SchemaBehind(RuntimeError):
    """The database is not yet at the revision this code expects."""


def revisions(migrations_dir: Path) -> tuple[str, frozenset[str]]:
    """The head revision of a migration history and every revision in it."""
    parents: dict[str, frozenset[str]] = {}
    for path in sorted((migrations_dir / "versions").glob("*.py")):
        found = _assignments(path)
        parents[str(found["revision"])] = _as_set(found.get("down_revision"))
    heads = set(parents) - set().union(*parents.values())
    assert len(heads) == 1, (migrations_dir, heads)
    return heads.pop(), frozenset(parents)


def _assignments(path: Path) -> dict[str, object]:
    """The module-level `revision` and `down_revision` literals of a migration file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            found[target.id] = ast.literal_eval(value)
    return found


def _as_set(down: object) -> frozenset[str]:
    if down is None:
        return frozenset()
    if isinstance(down, str):
        return frozenset({down})
    assert isinstance(down, tuple | list), down
    return frozenset(str(item) for item in down)


def schema_check(engine: Callable[[], AsyncEngine], migrations_dir: Path) -> ReadinessCheck:
    """A readiness check that fails until the database is at this code's head revision.

    A revision this code does not know is newer (the next release migrated first): old pods
    keep serving through the rollout. Once passed the check is not repeated: a schema never
    moves back, and the probe must not wait on the database a second time.
    """
    head, known = revisions(migrations_dir)
    passed = False

    async def check() -> None:
        nonlocal passed
        if passed:
            return
        async with engine().connect() as conn:
            found = await conn.execute(text("SELECT version_num FROM alembic_version"))
            current = found.scalar_one_or_none()
        if current is None or (current != head and current in known):
            raise SchemaBehind(f"schema at {current}, expected {head}")
        passed = True

    return check
