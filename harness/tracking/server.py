"""Start a real MLflow tracking server (and UI) on loopback, for `harness ui`, SLURM jobs and tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError


class ServerError(HarnessError):
    """The MLflow server did not start; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Without the job runner the server needs ~550 MB instead of 1.2 GB (INFRA.md).
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


@dataclass
class MlflowServer:
    """A running ``mlflow server`` process. Use as a context manager or call ``stop()``."""

    url: str
    backend_uri: str
    process: subprocess.Popen
    log_path: Path
    _log: object = field(repr=False, default=None)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> MlflowServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def mlflow_command() -> list[str]:
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    return [exe] if exe else [sys.executable, "-m", "mlflow"]


def start_server(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    backend_uri: str | None = None,
    startup_timeout: float = 90.0,
) -> MlflowServer:
    """Start ``mlflow server`` with a sqlite store under ``root`` and wait until ``/health`` answers."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    backend_uri = backend_uri or f"sqlite:///{root / 'mlflow.db'}"
    cmd = mlflow_command() + [
        "server",
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(root / "mlartifacts"),
        "--host", host,
        "--port", str(port),
        "--workers", "1",
    ]
    log_path = root / f"mlflow-server-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed by MlflowServer.stop
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=server_env(),
                            start_new_session=True)
    server = MlflowServer(f"http://{host}:{port}", backend_uri, proc, log_path, log)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    tail = log_path.read_text()[-2000:]
    raise ServerError(f"MLflow server on {host}:{port} did not become healthy; log {log_path}:\n{tail}")
