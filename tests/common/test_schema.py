"""The revisions read from the migration files are Alembic's, and the services never load Alembic."""

import ast
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from common.schema import revisions

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("schemas", "common", "global_api", "regional_api", "router")


@pytest.mark.parametrize("service", ["global_api", "regional_api"])
def test_the_revisions_are_alembics(service: str) -> None:
    migrations = ROOT / service / "migrations"
    config = Config()
    config.set_main_option("script_location", str(migrations))
    script = ScriptDirectory.from_config(config)
    known = frozenset(rev.revision for rev in script.walk_revisions())
    assert revisions(migrations) == (script.get_current_head(), known)


def _imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_only_the_migrations_import_alembic() -> None:
    """Importing Alembic costs each process start about 0.25 s of CPU it does not need."""
    tooling = {ROOT / "common" / "migrate.py"}
    users = {
        str(path.relative_to(ROOT))
        for package in SERVICES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts and path not in tooling
        for name in _imported_modules(path)
        if name.split(".")[0] == "alembic" or name == "common.migrate"
    }
    assert users == set()
