"""`python -m deploy.local up` as a real process: SIGTERM half-way through start-up cleans up."""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.topology import Ports
from harness.pg import find_pg_bin
from tests.support.poll import wait_until

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="no PostgreSQL server binaries")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_layout() -> tuple[int, int, Ports]:
    for _ in range(50):
        base, pg_base = random.randrange(20000, 29000, 10), random.randrange(40000, 49000, 10)
        ports = Ports.from_base(base, pg_base)
        if all(_free(port) for port, _ in ports.owners()):
            return base, pg_base, ports
    raise RuntimeError("no free port layout found")


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def data() -> Iterator[Path]:
    """A data directory the CLI's PostgreSQL servers can enter; removed after (120 MB of them)."""
    path = Path(tempfile.mkdtemp(prefix="cinema-cli-"))
    path.chmod(0o755)  # PostgreSQL runs as an unprivileged account when tests run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_sigterm_during_start_up_stops_what_was_started(data: Path) -> None:
    base, pg_base, ports = _free_layout()
    command = [sys.executable, "-m", "deploy.local", "up", "--no-demo", "--no-fsync"]
    command += ["--base-port", str(base), "--pg-base-port", str(pg_base)]
    command += ["--data-dir", str(data / "var")]
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "global_api: starting" in line:
                children = _children_of(proc.pid)
                os.kill(proc.pid, signal.SIGTERM)
                break
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines.append(output)
    text = "".join(lines)
    assert proc.returncode != 0, text
    assert "start-up failed: stopping what was started" in text
    # Parallel start-up threads print whole lines: never two progress lines merged into one.
    assert not [line for line in text.splitlines() if "[up]" in line[1:]], text
    wait_until(lambda: all(_free(port) for port, _ in ports.owners()), timeout=10)
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()
