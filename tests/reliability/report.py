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


def _cell(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items() if v) or "0"
    return str(value)


def markdown(document: dict[str, Any]) -> str:
    """The fault table (and storm counts) as Markdown, for docs/reliability.md."""
    lines = [
        "| fault | lasted s | requests | ok | failed by kind | failover s | recovered s "
        "| restart s | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    plain = {"fault", "fault_seconds", "requests", "ok", "failed_by_kind", "failover_seconds"}
    plain |= {"recover_seconds", "restart_seconds", "failed"}
    for row in document.get("faults", {}).values():
        notes = {k: v for k, v in row.items() if k not in plain}
        cells = [row["fault"], row["fault_seconds"], row["requests"], row["ok"]]
        cells += [row["failed_by_kind"], row["failover_seconds"], row["recover_seconds"]]
        cells += [row["restart_seconds"], notes]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for name, row in document.get("storm", {}).items():
        lines += ["", f"Storm `{name}`: {row['customers']} customers, {row['seats']} seats."]
        lines += [
            f"- {key}: {value}" for key, value in row.items() if key not in ("customers", "seats")
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(json.loads(artifact_path().read_text())))
