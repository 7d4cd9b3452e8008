"""Prometheus config and alert rules: promtool checks and rule unit tests."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package 'prometheus'; .ci/run installs it)",
)


def _promtool(*args: str) -> str:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, *args], cwd=PROM, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_promtool
def test_scrape_config_is_valid() -> None:
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")


@needs_promtool
def test_alert_rules_are_valid() -> None:
    assert "SUCCESS" in _promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_alert_rule_unit_tests_pass() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")


def test_required_alerts_exist_and_are_unit_tested() -> None:
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    required = {
        "RegionDown",
        "EndpointEjected",
        "HighErrorRatio",
        "HoldConflictSpike",
        "LatencySLOBurn",
        "DatabasePoolSaturated",
    }
    assert required <= alerts
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert len(tested & required) >= 2


def _exported_metric_names() -> set[str]:
    """Metric names declared in the services' code (Counter/Gauge/Histogram first argument)."""
    names = set()
    pattern = re.compile(r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"([a-z_:]+)\"", re.S)
    for folder in ("common", "global_api", "regional_api", "router"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(pattern.findall(path.read_text()))
    return names


def test_alerts_use_metric_names_the_services_export() -> None:
    exported = _exported_metric_names()
    exported |= {f"{n}_bucket" for n in exported} | {f"{n}_count" for n in exported}
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name in re.findall(
                r"\b([a-z_]+(?:_total|_seconds_bucket|_seconds_count|_healthy|_in_use|_size))\b",
                rule["expr"],
            ):
                assert name in exported or name in recorded, f"{rule.get('alert')}: {name}"
