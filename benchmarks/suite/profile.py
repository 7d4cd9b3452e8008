"""py-spy samples of the busy processes during a load, summarised by component."""

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# By the top-level package of the leaf frame's file (py-spy prints module-relative paths).
COMPONENTS = {
    "router": "router (own code)",
    "regional_api": "regional_api (own code)",
    "common": "common (auth, db, errors, observability)",
    "schemas": "pydantic",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "sqlalchemy": "SQLAlchemy",
    "asyncpg": "asyncpg driver",
    "psycopg": "psycopg driver",
    "uvicorn": "uvicorn (HTTP server)",
    "httptools": "uvicorn (HTTP server)",
    "starlette": "Starlette / FastAPI",
    "fastapi": "Starlette / FastAPI",
    "jwt": "JWT / crypto",
    "cryptography": "JWT / crypto",
    "prometheus_client": "prometheus_client",
    "logging": "logging",
    "json": "json",
    "aiohttp": "aiohttp / aiohappyeyeballs (client)",
    "aiohappyeyeballs": "aiohttp / aiohappyeyeballs (client)",
    "asyncio": "event loop (uvloop in C: socket I/O, callbacks)",
    "uvloop": "event loop (uvloop in C: socket I/O, callbacks)",
}


def py_spy() -> str | None:
    """The py-spy binary of the virtualenv or PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path, fmt: str = "raw") -> subprocess.Popen[bytes] | None:
    """Sample `pid` for `seconds` at 200 Hz (collapsed stacks, or `fmt`); None without py-spy."""
    binary = py_spy()
    if binary is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [binary, "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", "200"]
    command += ["--nonblocking", "--format", fmt, "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def component(frame: str) -> str:
    """The component a leaf frame `function (file:line)` belongs to."""
    file = frame.rpartition("(")[2]
    package = file.split("/", 1)[0] if "/" in file else file.split(".", 1)[0]
    return COMPONENTS.get(package, "other (stdlib)")


def summarise(collapsed: str, top: int = 8) -> dict[str, Any]:
    """Self-time shares by component and the hottest leaf functions of collapsed stacks."""
    by_component: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        by_component[component(leaf)] += int(count)
        by_leaf[
            leaf.replace("/work/main/", "").replace(".venv/lib/python3.11/site-packages/", "")
        ] += int(count)
        total += int(count)
    share = {name: round(n / total, 3) for name, n in by_component.most_common()} if total else {}
    leaves = [[name, round(n / total, 3)] for name, n in by_leaf.most_common(top)] if total else []
    return {"samples": total, "components": share, "top_leaves": leaves}
