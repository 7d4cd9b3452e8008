"""What the figures were measured on: cores, memory, versions, commit."""

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.pg import find_pg_bin

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def memory_mb() -> int:
    """Total memory of the machine in MB, from /proc/meminfo."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def cpu_model() -> str:
    """The CPU model name, from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe() -> dict[str, Any]:
    """Machine, software versions and git commit of this run."""
    bin_dir = find_pg_bin()
    postgres = _run(str(bin_dir / "postgres"), "--version") if bin_dir else "unknown"
    dirty = _run("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_mb": memory_mb(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "postgres": postgres,
        "git_commit": _run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(dirty and dirty != "unknown"),
        "load_average_before": round(os.getloadavg()[0], 2),
    }
