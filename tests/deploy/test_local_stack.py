"""The local stack's pure parts: port layout, busy-port errors, the demo dataset, settings names."""

import io
import os
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from deploy.local import dataset
from deploy.local.cli import line_printer, parse_args, up
from deploy.local.stack import LocalStack, StackOptions, _load_or_make_credentials
from deploy.local.topology import (
    PROMETHEUS_OFFSET,
    REGIONS,
    PortInUseError,
    Ports,
    check_ports_free,
    global_env,
    regional_env,
    router_env,
)
from tests.deploy.settings import unknown_settings

ROOT = Path(__file__).resolve().parents[2]


def test_default_ports_follow_the_documented_layout() -> None:
    ports = Ports.from_base()
    assert ports.router == 8000
    assert ports.global_api == 8001
    assert ports.regional == {"eu-west": (8011, 8012), "us-east": (8021,)}
    assert ports.postgres == {"global": 8040, "eu-west": 8041, "us-east": 8042}
    assert len({port for port, _ in ports.owners()}) == 8


def test_base_port_moves_every_port_into_one_range() -> None:
    ports = Ports.from_base(9100)
    assert sorted(port for port, _ in ports.owners()) == [
        9100,
        9101,
        9111,
        9112,
        9121,
        9140,
        9141,
        9142,
    ]
    assert Ports.from_base(9100, 6433).postgres == {
        "global": 6433,
        "eu-west": 6434,
        "us-east": 6435,
    }
    assert parse_args(["up", "--base-port", "9100"]).pg_base_port is None


def test_progress_lines_from_many_threads_never_merge() -> None:
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            time.sleep(0)  # let another thread in between two writes of one line, if any
            return len(text)

    emit = line_printer(Recorder())
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: [emit(f"service {n}: line {i}") for i in range(100)], range(8)))
    assert len(writes) == 800
    assert all(re.fullmatch(r"\[up\] service \d: line \d+\n", text) for text in writes)


def test_prometheus_missing_is_reported_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus on it
    data = tmp_path / "var"
    args = parse_args(["up", "--prometheus", "--base-port", "18900", "--data-dir", str(data)])
    assert up(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --prometheus needs the prometheus program")
    assert "Traceback" not in err
    assert not data.exists()


@contextmanager
def _busy_prometheus_port() -> Iterator[int]:
    """A base port whose prometheus port is taken (held here) and whose stack ports are free."""
    for _ in range(50):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            base = busy.getsockname()[1] - PROMETHEUS_OFFSET
            try:  # an ephemeral port of another program may sit among the stack's own
                check_ports_free(Ports.from_base(base))
            except PortInUseError:
                continue
            yield base
            return
    raise AssertionError("no base port with the stack's ports free")


def test_prometheus_port_is_checked_with_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed")
    with _busy_prometheus_port() as base:
        argv = ["up", "--prometheus", "--base-port", str(base), "--data-dir", str(tmp_path / "v")]
        assert up(parse_args(argv)) == 2
    assert "(needed by prometheus) is already in use" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


def test_free_ports_are_distinct() -> None:
    ports = Ports.free()
    assert len({port for port, _ in ports.owners()}) == len(ports.owners()) == 8
    check_ports_free(ports)


def test_a_taken_port_is_named_with_its_service_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = Ports.free()
        ports.regional["eu-west"] = (ports.regional["eu-west"][0], taken)
        with pytest.raises(PortInUseError) as caught:
            check_ports_free(ports)
    assert caught.value.port == taken
    assert (
        str(caught.value) == f"port {taken} (needed by regional_api eu-west #2) is already in use"
    )


def test_stack_start_with_a_busy_port_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = Ports.free()
        ports = Ports(busy.getsockname()[1], ports.global_api, ports.regional, ports.postgres)
        stack = LocalStack(
            StackOptions(root=tmp_path / "var", ports=ports), progress=lambda _: None
        )
        with pytest.raises(PortInUseError, match="needed by router"):
            stack.start()
    assert stack.processes == {}
    assert stack.servers == {}


def test_cli_arguments() -> None:
    args = parse_args(["up", "--wipe", "--base-port", "9000", "--data-dir", "/tmp/x", "--no-demo"])
    assert (args.command, args.wipe, args.base_port, args.no_demo) == ("up", True, 9000, True)
    assert str(args.data_dir) == "/tmp/x"


def test_process_environments_use_real_settings_names(tmp_path: Path) -> None:
    env = global_env(dsn="postgresql://x@h/db") | router_env(
        global_url="http://g", static_config=tmp_path / "m.json"
    )
    for spec in REGIONS:
        env |= regional_env(
            spec, dsn="postgresql://x@h/db", global_url="http://g", jwks_cache=tmp_path
        )
    assert unknown_settings(env) == []


def test_credentials_are_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "demo-credentials.json"
    first = _load_or_make_credentials(path)
    assert set(first) == {"admin", "staff", "customer"}
    assert all(len(who["password"]) >= 16 for who in first.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _load_or_make_credentials(path) == first


@pytest.mark.parametrize("hall", [dataset.STUDIO, dataset.SALLE, dataset.GRAND, dataset.IMAX])
def test_halls_are_realistic_layouts(hall: dataset.HallSpec) -> None:
    layout = dataset.hall_document(hall)
    seats = sum(1 for row in layout["rows"] for char in row if char != "_")
    assert 100 <= seats == hall.seat_count <= 400
    assert all(row.count("_") == 2 for row in layout["rows"])  # two aisles in every row
    assert dataset.seat_types(layout) == {"standard", "premium", "vip", "wheelchair", "companion"}
    assert set(layout["legend"]) == {"A", "P", "V", "W", "C"}
    assert set(dataset.prices("EUR", dataset.seat_types(layout))) == dataset.seat_types(layout)


def test_cinemas_span_several_cities_per_region_with_real_timezones() -> None:
    cinemas = dataset.cinemas()
    for region in ("eu-west", "us-east"):
        assert len({c.city for c in cinemas if c.region == region}) >= 2
    zones = {c.timezone for c in cinemas}
    assert zones == {
        "Europe/Paris",
        "Europe/Berlin",
        "Europe/Madrid",
        "America/New_York",
        "America/Chicago",
    }
    for zone in zones:
        ZoneInfo(zone)
    small = dataset.cinemas(small=True)
    assert [c.region for c in small] == ["eu-west", "us-east"]
    assert all(len(c.halls) == 1 for c in small)


def test_a_dozen_movies_per_region() -> None:
    movies = dataset.movie_documents("eu-west")
    assert len(movies) == 12
    assert len({m["title"] for m in movies}) == 12


def test_two_weeks_of_shows_never_overlap_including_cleaning() -> None:
    durations = [m["duration_minutes"] for m in dataset.movie_documents("us-east")]
    plan = dataset.schedule(
        date(2026, 3, 20), 14, "America/New_York", durations, cleaning_minutes=15
    )  # spans the US daylight-saving change
    assert len(plan) >= 14 * 4
    ends = [start + timedelta(minutes=durations[m] + 15) for m, start in plan]
    for (_, start), previous_end in zip(plan[1:], ends, strict=False):
        assert start >= previous_end
    by_day: dict[date, int] = {}
    for _, start in plan:
        local = start.astimezone(ZoneInfo("America/New_York"))
        assert 11 <= local.hour <= 22
        by_day[local.date()] = by_day.get(local.date(), 0) + 1
    assert len(by_day) == 14
    assert min(by_day.values()) >= 4
    assert len({m for m, _ in plan}) == len(durations)


def test_no_show_is_scheduled_in_the_past() -> None:
    now = datetime.now(UTC)
    durations = [100, 120]
    plan = dataset.schedule(
        now.date(), 2, "Europe/Paris", durations, cleaning_minutes=15, not_before=now
    )
    assert all(start >= now for _, start in plan)


def test_install_says_what_it_does_and_how_long_it_took(tmp_path: Path) -> None:
    # Stubs stand in for apt and pip: the test checks what the user reads, not the downloads.
    calls = tmp_path / "calls"
    pip = tmp_path / "pip"
    pip.write_text(f'#!/bin/sh\necho "pip $*" >> {calls}\n')
    python = tmp_path / "python3"
    python.write_text(
        f'#!/bin/sh\necho "python $*" >> {calls}\nmkdir -p "$3/bin"\ncp {pip} "$3/bin/pip"\n'
    )
    for stub in (pip, python):
        stub.chmod(0o755)
    ensure = tmp_path / "ensure.sh"
    ensure.write_text(f'echo "ensure" >> {calls}\n')
    env = {**os.environ, "VENV": str(tmp_path / "venv"), "PYTHON": str(python)}
    env["ENSURE"] = str(ensure)
    result = subprocess.run(
        ["bash", str(ROOT / "deploy/local/install.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "[install] checking the Debian packages (postgresql) ..."
    assert lines[2].startswith("[install] creating the virtualenv ")
    assert lines[4].startswith("[install] installing the Python dependencies")
    assert all(re.fullmatch(r"\[install\]   done in \d+ s", lines[n]) for n in (1, 3, 5))
    assert re.fullmatch(r"\[install\] ready in \d+ s", lines[-1])
    assert calls.read_text().splitlines()[0] == "ensure"
    assert "pip install -q --require-hashes -r requirements.lock" in calls.read_text()
    assert "pip install -q --no-deps -e ." in calls.read_text()


def test_the_early_demo_show_starts_soon_with_its_doors_already_open() -> None:
    now = datetime(2026, 12, 6, 4, 58, 13, tzinfo=ZoneInfo("Europe/Paris"))
    start = dataset.early_show_start(now)
    assert timedelta(minutes=40) <= start - now < timedelta(minutes=45)
    assert (start.minute % 5, start.second, start.microsecond) == (0, 0, 0)
    assert start - timedelta(hours=1) < now  # doors open an hour before the start
