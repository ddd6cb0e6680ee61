"""Start a real MLflow tracking server (and UI), for `harness ui`, SLURM jobs and tests.

A sweep's server is *detached* (``serve_detached``): it outlives the driver that started it, so jobs keep logging
when the driver is stopped, and the next driver on the same runs folder finds it through
``<runs_dir>/mlflow-server.json`` (pid, URL, store) and reuses it. ``stop_detached`` (``harness tracking stop``)
ends it. It binds to ``host`` (``0.0.0.0`` for jobs on other nodes) and is advertised to jobs at an address they
can reach (``advertise_host``, default this host's name when bound to every interface). Bound beyond loopback it
requires credentials (MLflow's basic-auth app, ``harness.tracking.auth``); on loopback it needs none.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
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
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_url(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets (``http://[::1]:5000``)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def local_url(host: str, port: int) -> str:
    """The URL this machine reaches a server bound to ``host`` at (loopback for the any-address)."""
    return http_url("127.0.0.1" if host in ("0.0.0.0", "::") else host, port)


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
    authenticated: bool = False  # basic-auth app: clients need the root folder's credentials

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
    advertise_host: str | None = None,
) -> MlflowServer:
    """Start ``mlflow server`` with a sqlite store under ``root`` and wait until ``/health`` answers.

    ``url`` of the result uses ``advertise_host`` (default: see ``advertised_host``). Bound to a ``host`` other
    than loopback, the server runs MLflow's basic-auth app with ``root``'s credentials (``harness.tracking.auth``),
    handed over in its environment."""
    from harness.tracking import auth

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
    advertised = advertised_host(host, advertise_host)
    if advertised not in ("127.0.0.1", "::1", "localhost"):
        # MLflow answers 403 to a Host header outside localhost and private IPs (DNS-rebinding guard): the name
        # jobs use must be allowed explicitly.
        cmd += ["--allowed-hosts", ",".join(allowed_hosts(advertised))]
    env = server_env()
    authenticated = not auth.is_loopback(host)
    if authenticated:
        cmd += ["--app-name", "basic-auth"]
        env |= auth.server_env(root)
    log_path = root / f"mlflow-server-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed by MlflowServer.stop
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = MlflowServer(http_url(advertised, port), backend_uri, proc, log_path, log, authenticated)
    local = local_url(host, port)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{local}/health", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    tail = log_path.read_text()[-2000:]
    raise ServerError(f"MLflow server on {host}:{port} did not become healthy; log {log_path}:\n{tail}")


def advertised_host(host: str, advertise_host: str | None = None) -> str:
    """The address jobs use for a server bound to ``host``: ``advertise_host`` if given, this host's name when
    bound to every interface, else ``host`` itself."""
    if advertise_host:
        return advertise_host
    return socket.getfqdn() if host in ("0.0.0.0", "::") else host


def allowed_hosts(advertised: str) -> list[str]:
    """MLflow's default allowed Host headers (localhost, private IPs) plus ``advertised`` with any port."""
    try:
        from mlflow.server.security_utils import get_default_allowed_hosts

        default = get_default_allowed_hosts()
    except ImportError:  # older MLflow: no Host check at all
        default = ["localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*"]
    return [*default, advertised, f"{advertised}:*"]


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


SERVER_FILE = "mlflow-server.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie (exited, not yet reaped) still answers kill 0.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return True


def read_detached(runs_dir: str | Path) -> dict | None:
    path = Path(runs_dir) / SERVER_FILE
    return json.loads(path.read_text()) if path.exists() else None


def serve_detached(runs_dir: str | Path, backend_uri: str, *, port: int, host: str = "127.0.0.1",
                   advertise_host: str | None = None) -> str:
    """The URL of a server for ``backend_uri`` that outlives this process: the one recorded in
    ``<runs_dir>/mlflow-server.json`` if it still answers for the same store at the same address (with
    credentials exactly when bound beyond loopback), else a new one (written there). Clients of an authenticated
    server take the runs folder's credentials (``harness.tracking.auth.use_credentials``)."""
    from harness.tracking.auth import is_loopback
    from harness.tracking.run_folder import atomic_write_text

    runs_dir = Path(runs_dir).resolve()
    url = http_url(advertised_host(host, advertise_host), port)
    info = read_detached(runs_dir)
    if (info and info["backend_uri"] == backend_uri and info["url"] == url
            and info.get("authenticated", False) == (not is_loopback(host)) and healthy(info["local_url"])):
        return info["url"]
    if info and info["backend_uri"] == backend_uri and _alive(info["pid"]):
        stop_detached(runs_dir)  # same store, other address: one server per store
    server = start_server(runs_dir, host=host, port=port, backend_uri=backend_uri, advertise_host=advertise_host)
    server._log.close()  # the server keeps its own descriptor
    local = local_url(host, port)
    atomic_write_text(runs_dir / SERVER_FILE, json.dumps({
        "pid": server.process.pid, "url": server.url, "local_url": local, "backend_uri": backend_uri,
        "host": host, "port": port, "log": str(server.log_path), "started": time.time(),
        "authenticated": server.authenticated}, indent=1))
    return server.url


def stop_detached(runs_dir: str | Path, timeout: float = 15.0) -> bool:
    """Stop the detached server of ``runs_dir`` (its whole process group). False when none was running."""
    path = Path(runs_dir) / SERVER_FILE
    info = read_detached(runs_dir)
    if info is None:
        return False
    pid, running = info["pid"], _alive(info["pid"])
    if running:
        try:
            os.killpg(pid, signal.SIGTERM)  # start_new_session: the group is the server and its workers
        except OSError:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return running
