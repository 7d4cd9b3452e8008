"""The measured reliability table: `test-artifacts/reliability.json`, merged row by row."""

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def artifact_path() -> Path:
    """Where the table is written (`RELIABILITY_ARTIFACT` overrides)."""
    default = ROOT / "test-artifacts" / "reliability.json"
    return Path(os.environ.get("RELIABILITY_ARTIFACT", default))


def record(section: str, key: str, row: dict[str, Any]) -> None:
    """Store one measured row under `section`/`key`, keeping the rows of other tests."""
    path = artifact_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    document.setdefault(section, {})[key] = row
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
