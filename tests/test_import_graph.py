"""The top-level packages import each other without a cycle, and no service imports tooling."""

import ast
import itertools
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = frozenset(p.parent.name for p in ROOT.glob("*/__init__.py"))
# What the services run on; the tooling (harness, tests, benchmarks, deploy) sits above it.
RUNTIME = frozenset({"schemas", "common", "global_api", "regional_api", "router"})


def _imported(tree: ast.AST) -> Iterator[str]:
    """Top-level names of the absolute imports in `tree`, lazy ones inside functions included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def import_graph(root: Path = ROOT) -> dict[tuple[str, str], Path]:
    """Each edge (importer, imported) between first-party packages, with one file making it."""
    edges: dict[tuple[str, str], Path] = {}
    for package in sorted(PACKAGES):
        for path in sorted((root / package).rglob("*.py")):
            for name in _imported(ast.parse(path.read_text(), str(path))):
                if name in PACKAGES and name != package:
                    edges.setdefault((package, name), path.relative_to(root))
    return edges


def find_cycle(edges: dict[tuple[str, str], Path]) -> list[str] | None:
    """One cycle of the graph as a list of packages (first repeated last), or None."""
    after: dict[str, list[str]] = {}
    for importer, imported in edges:
        after.setdefault(importer, []).append(imported)
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in after.get(node, []):
            if cycle := visit(nxt, [*path, node]):
                return cycle
        done.add(node)
        return None

    for start in sorted(after):
        if cycle := visit(start, []):
            return cycle
    return None


def test_find_cycle_names_a_cycle() -> None:
    edges = {("a", "b"): Path("a/x.py"), ("b", "c"): Path("b/y.py"), ("c", "a"): Path("c/z.py")}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({("a", "b"): Path("a/x.py")}) is None


def test_no_cycle_between_top_level_packages() -> None:
    edges = import_graph()
    cycle = find_cycle(edges)
    assert cycle is None, [f"{a} -> {b} ({edges[a, b]})" for a, b in itertools.pairwise(cycle)]


def test_the_image_ships_no_tooling() -> None:
    """The services and the image's deploy steps import only runtime code and `deploy`."""
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "deploy/local" in ignore  # the local stack and its harness stay out of the image
    shipped = [p for package in RUNTIME for p in (ROOT / package).rglob("*.py")]
    shipped += [p for p in (ROOT / "deploy").rglob("*.py") if "local" not in p.parts]
    wrong = {
        (str(path.relative_to(ROOT)), name)
        for path in shipped
        for name in _imported(ast.parse(path.read_text(), str(path)))
        if name in PACKAGES and name not in RUNTIME | {"deploy"}
    }
    assert wrong == set()


def test_installing_the_project_adds_no_command_the_image_cannot_run() -> None:
    """`pip install .` in the image installs no script: deploy.local is not shipped."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "scripts" not in project
    assert "gui-scripts" not in project
