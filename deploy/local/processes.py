"""Start, stop, kill and restart service processes (uvicorn workers) on 127.0.0.1."""

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.procs import wait_answering
from harness.tls import TlsFiles

APPS = {
    "global_api": "global_api.main:create_app",
    "regional_api": "regional_api.main:create_app",
    "router": "router.main:create_app",
}
# The router's own uvicorn protocol, with its proxy fast path (router/proxy/protocol.py).
HTTP_PROTOCOLS = {"router": "router.proxy.protocol:RouterProtocol"}
# Whose X-Forwarded-For uvicorn believes (never its implicit 127.0.0.1 default): the services
# believe the router's hop, which is 127.0.0.1 here; the router believes no peer's, it
# derives the client itself (ROUTER_TRUSTED_PROXIES). docs/operations.md, "Client addresses".
FORWARDED_ALLOW_IPS = {"global_api": "127.0.0.1", "regional_api": "127.0.0.1", "router": ""}


@dataclass
class ServiceProcess:
    """One uvicorn process serving one app factory on a fixed loopback port."""

    name: str
    app: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    workers: int = 1
    tls: TlsFiles | None = None  # serve HTTPS and require client certificates (--tls)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the process."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running process, if any."""
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def command(self) -> list[str]:
        """The uvicorn command line of the process."""
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            APPS[self.app],
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--forwarded-allow-ips",
            FORWARDED_ALLOW_IPS[self.app],
            "--timeout-graceful-shutdown",
            "5",
            "--workers",
            str(self.workers),
        ]
        if self.workers == 1:
            command += ["--loop", "uvloop", "--http", HTTP_PROTOCOLS.get(self.app, "httptools")]
        if self.tls is not None:
            command += self.tls.uvicorn_args()
        return command

    def start(self) -> "ServiceProcess":
        """Spawn the process (it is not yet known to be ready)."""
        command = self.command()
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            command,
            env={**os.environ, **self.env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 30.0, path: str = "/readyz") -> None:
        """Wait until the process answers 200 on `path`, or raise with its exit status."""
        verify = self.tls.client_context() if self.tls else True
        name = f"{self.name} (log: {self.log_path})"
        wait_answering(self.proc, self.url + path, name, timeout=timeout, verify=verify)

    def kill(self) -> None:
        """SIGKILL the process group: an abrupt crash."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited in time."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> "ServiceProcess":
        """Stop (if running) and start again on the same port with the same environment."""
        self.stop()
        return self.start()
