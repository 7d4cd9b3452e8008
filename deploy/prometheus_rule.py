"""`python -m deploy.prometheus_rule`: print deploy/prometheus/alerts.yml as a PrometheusRule."""

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
HEADER = """\
# deploy/prometheus/alerts.yml for the Prometheus Operator (apply to every cluster with
# `kubectl apply -k deploy/k8s/monitoring`). Generated; tests/deploy/test_prometheus.py keeps
# it equal to alerts.yml. Regenerate after changing the rules:
#   .venv/bin/python -m deploy.prometheus_rule > deploy/k8s/monitoring/prometheusrule.yaml
"""


def prometheus_rule() -> dict[str, Any]:
    """The alert rules as one PrometheusRule object."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "cinema-platform",
            "labels": {"app.kubernetes.io/part-of": "cinema-platform"},
        },
        "spec": {"groups": groups},
    }


def main() -> int:
    """Write the PrometheusRule to standard output."""
    sys.stdout.write(HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
