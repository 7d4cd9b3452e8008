"""A Prometheus process scraping a running local stack (alert rules from deploy/prometheus/)."""

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.local.stack import ROOT, LocalStack
from harness.procs import wait_answering

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"


def scrape_config(stack: LocalStack, *, interval: str = "1s") -> dict[str, Any]:
    """The compose scrape jobs, pointed at the local stack's ports instead of container names."""
    regional = [
        {
            "targets": [url.split("://", 1)[1] for url in stack.regional_urls(code)],
            "labels": {"role": "regional_api", "region": code},
        }
        for code in stack.ports.regional
    ]
    jobs = {
        "router": [
            {
                "targets": [f"127.0.0.1:{port}" for port in stack.ports.routers],
                "labels": {"role": "router"},
            }
        ],
        "global_api": [
            {"targets": [f"127.0.0.1:{stack.ports.global_api}"], "labels": {"role": "global_api"}}
        ],
        "regional_api": regional,
    }
    scrape: list[dict[str, Any]] = [
        {"job_name": name, "metrics_path": "/metrics", "static_configs": groups}
        for name, groups in jobs.items()
    ]
    if stack.tls is not None:  # the replicas serve HTTPS and want a client certificate
        files = stack.tls
        scrape[-1]["scheme"] = "https"
        scrape[-1]["tls_config"] = {
            "ca_file": str(files.ca),
            "cert_file": str(files.cert("client")),
            "key_file": str(files.key("client")),
        }
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(RULES)],
        "scrape_configs": scrape,
    }


@dataclass
class PrometheusProcess:
    """`prometheus` on a loopback port with its storage in `directory`."""

    directory: Path
    port: int
    config: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # One client for every query: `httpx.get` builds a TLS context each time (50 ms of CPU).
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=5.0), repr=False)

    @property
    def url(self) -> str:
        """Base URL of the Prometheus HTTP API and UI."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "PrometheusProcess":
        """Write the config, start the server and wait until it is ready."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise FileNotFoundError("prometheus is not installed (Debian package 'prometheus')")
        self.directory.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config))
        log = open(self.directory / "prometheus.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_answering(self.proc, f"{self.url}/-/ready", "prometheus", timeout=timeout)
        return self

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant query; return the result vector."""
        response = self.http.get(f"{self.url}/api/v1/query", params={"query": promql})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health."""
        response = self.http.get(f"{self.url}/api/v1/targets")
        response.raise_for_status()
        active: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
        return active

    def stop(self) -> None:
        """Terminate the server (by PID) and wait for it."""
        self.http.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
