"""A tracking server bound beyond loopback requires credentials (MLflow's basic-auth app, real server): requests
without them are refused, the driver's and a real training job's succeed, and the password is written nowhere but
the runs folder's 0600 credentials file. A loopback server stays credential-free."""

import base64
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import submitit
from mlflow.tracking import MlflowClient

from harness.dispatch.job import TrainJob
from harness.dispatch.tracking import JobTracking
from harness.tracking import auth, names
from harness.tracking.run_folder import RunFolder
from harness.tracking.server import read_detached, stop_detached
from tests.harness.train.conftest import mini_config

pytestmark = pytest.mark.mlflow_server
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=10"


def _status(url: str, user: str | None = None, password: str | None = None) -> int:
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_loopback_is_credential_free_and_other_hosts_are_not():
    assert all(auth.is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"))
    assert not any(auth.is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "n1", "node1.cluster"))


def test_credentials_are_generated_once_private_and_refused_when_readable(tmp_path):
    assert auth.credentials(tmp_path, create=False) is None and auth.client_env(tmp_path) == {}
    first = auth.credentials(tmp_path)
    path = tmp_path / auth.AUTH_DIR / auth.CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert auth.credentials(tmp_path) == first and len(first.password) >= 40 and first.password != first.secret_key
    assert auth.client_env(tmp_path) == {"MLFLOW_TRACKING_USERNAME": first.username,
                                         "MLFLOW_TRACKING_PASSWORD": first.password}
    env = auth.server_env(tmp_path)
    ini = Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    assert first.password not in ini and "default_permission = NO_PERMISSIONS" in ini
    assert stat.S_IMODE(Path(env["MLFLOW_AUTH_CONFIG_PATH"]).stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(auth.CredentialsError, match="readable by others \\(mode 644\\)"):
        auth.credentials(tmp_path)


def test_loopback_server_answers_without_credentials(mlflow_server):
    assert _status(mlflow_server + SEARCH) == 200


def test_server_beyond_loopback_refuses_requests_without_credentials_and_serves_the_jobs(tmp_path, monkeypatch):
    for var in auth.CLIENT_VARS:
        monkeypatch.delenv(var, raising=False)
    runs_dir = tmp_path / "runs"
    config = mini_config(tmp_path, max_steps=2, val_every=100, val_batches=1, checkpoint_every=2, log_every=1,
                         accelerator="cpu", devices=1)
    config = config.model_copy(update={"runs_dir": runs_dir, "tracking": config.tracking.model_copy(
        update={"server_host": "0.0.0.0", "advertise_host": "127.0.0.1", "experiment": "auth"})})
    tracking = JobTracking("slurm")  # a sqlite store served to jobs, as a SLURM sweep's driver does
    try:
        job_config, experiment_id = tracking.job_config(config)  # starts the server; the driver creates the experiment
        url = job_config["tracking"]["uri"]
        assert read_detached(runs_dir)["authenticated"] is True
        creds = auth.credentials(runs_dir, create=False)
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == creds.password  # the driver's environment, for its jobs
        assert _status(url + SEARCH) == 401
        assert _status(url + SEARCH, creds.username, "not-the-password") == 401
        assert _status(url + SEARCH, creds.username, creds.password) == 200
        assert _status(url + "/health") == 200

        # A job started the way the sweep starts local jobs (a child process: it inherits the environment).
        executor = submitit.LocalExecutor(folder=tmp_path / "submitit")
        executor.update_parameters(timeout_min=20)
        job = executor.submit(TrainJob(), job_config, str(tmp_path / "run"), experiment_id, {names.TAG_SWEEP: "auth"})
        state = job.result()
        assert state["status"] == "finished" and state["step"] == 2
        runs = MlflowClient(tracking_uri=url).search_runs([experiment_id])
        assert [r.info.run_id for r in runs] == [state["mlflow_run_id"]]
        losses = MlflowClient(tracking_uri=url).get_metric_history(state["mlflow_run_id"], names.LOSS)
        assert sorted(m.step for m in losses) == [1, 2]

        # The secret is on no command line and in no log or record: only in the credentials file.
        info = read_detached(runs_dir)
        group = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(p) == info["pid"]]
        assert group and not any(creds.password in (p / "cmdline").read_text(errors="ignore") for p in group)
        written = [p for d in (runs_dir, tmp_path / "submitit", RunFolder(tmp_path / "run").path)
                   for p in d.rglob("*") if p.is_file() and p.suffix != ".db" and p.name != auth.CREDENTIALS_FILE]
        assert any(p.name.startswith("mlflow-server-") for p in written)  # the server's log is among them
        leaked = [str(p) for p in written if creds.password.encode() in p.read_bytes()]
        assert leaked == []
    finally:
        tracking.close()
        stop_detached(runs_dir)


def _pgid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(") ", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def test_a_server_started_without_credentials_beyond_loopback_is_replaced(tmp_path):
    """A detached server recorded before credentials existed (unauthenticated on 0.0.0.0) is not reused."""
    from harness.tracking.server import serve_detached, start_server
    from harness.tracking.store import default_uri

    runs_dir = tmp_path.resolve()
    backend = default_uri(runs_dir)
    old = start_server(runs_dir, host="127.0.0.1", backend_uri=backend)  # a plain server, recorded as on 0.0.0.0
    old._log.close()
    port = int(old.url.rsplit(":", 1)[1])
    (runs_dir / "mlflow-server.json").write_text(json.dumps({
        "pid": old.process.pid, "url": f"http://127.0.0.1:{port}", "local_url": old.url, "backend_uri": backend,
        "host": "0.0.0.0", "port": port, "log": str(old.log_path), "started": 0}))
    try:
        url = serve_detached(runs_dir, backend, port=port, host="0.0.0.0", advertise_host="127.0.0.1")
        assert old.process.wait(30) is not None  # stopped, and a server with credentials took its place
        assert read_detached(runs_dir)["authenticated"] is True and _status(url + SEARCH) == 401
    finally:
        stop_detached(runs_dir)
        old.stop()
