"""Prometheus config and alert rules: promtool checks and rule unit tests."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.prometheus_rule import prometheus_rule

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
        "RouterErrorRatio",
        "RouterRefusingRegion",
        "RegionSaturated",
    }
    assert required <= alerts
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert len(tested & required) >= 2
    # What customers get through the router (issue 16) and a process down (both scrape setups).
    assert {"RouterErrorRatio", "RouterRefusingRegion", "RegionSaturated", "ProcessDown"} <= tested


def _exported_metric_names() -> set[str]:
    """Metric names declared in the services' code (Counter/Gauge/Histogram first argument)."""
    names = set()
    pattern = re.compile(r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"([a-z_:]+)\"", re.S)
    # Collectors read at scrape time (router/proxy/stats.py): a counter family gains "_total".
    family = re.compile(r"CounterMetricFamily\(\s*\"([a-z_:]+)\"", re.S)
    for folder in ("common", "global_api", "regional_api", "router"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            names |= set(pattern.findall(text))
            names |= {f"{name}_total" for name in family.findall(text)}
    return names


def test_alerts_use_metric_names_the_services_export() -> None:
    exported = _exported_metric_names()
    exported |= {f"{n}_bucket" for n in exported} | {f"{n}_count" for n in exported}
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name in re.findall(
                r"\b([a-z_]+(?:_total|_seconds_bucket|_seconds_count|_healthy|_in_use|_size|_in_flight|_capacity))\b",
                rule["expr"],
            ):
                assert name in exported or name in recorded, f"{rule.get('alert')}: {name}"


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_rules_read_no_label_that_differs_between_compose_and_kubernetes() -> None:
    for rule in _rules():
        text = rule["expr"] + json.dumps(rule.get("annotations", {}))
        assert not re.search(r"\bjob\b", text), rule.get("alert") or rule.get("record")


def test_the_prometheus_rule_for_kubernetes_is_alerts_yml() -> None:
    shipped = yaml.safe_load(
        (ROOT / "deploy" / "k8s" / "monitoring" / "prometheusrule.yaml").read_text()
    )
    assert shipped == prometheus_rule(), "run: python -m deploy.prometheus_rule > ..."


def _compose_target_labels() -> dict[str, set[str]]:
    """role -> the label names its Compose targets carry."""
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    labels: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        for group in job.get("static_configs", []):
            extra = group.get("labels", {})
            if "role" in extra:
                labels.setdefault(extra["role"], set()).update(extra)
    return labels


def _monitor_target_labels() -> dict[str, set[str]]:
    """role -> the label names the PodMonitors of deploy/k8s give their targets."""
    labels: dict[str, set[str]] = {}
    for path in (ROOT / "deploy" / "k8s").rglob("podmonitor.yaml"):
        for monitor in yaml.safe_load_all(path.read_text()):
            for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                relabel = endpoint["relabelings"]
                role = next(r["replacement"] for r in relabel if r["targetLabel"] == "role")
                labels.setdefault(role, set()).update(r["targetLabel"] for r in relabel)
    return labels


def test_podmonitors_label_targets_like_the_compose_scrape_config() -> None:
    compose = _compose_target_labels()
    assert compose == _monitor_target_labels()
    assert compose["regional_api"] == {"role", "region"}
    # The router's series carry the region they are about: a target label would overwrite it.
    assert compose["router"] == {"role"}
