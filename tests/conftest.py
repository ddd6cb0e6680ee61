"""Test-wide settings and real services. TRITON_INTERPRET must be set before any kernel module is imported
(docs/DESIGN.md §5)."""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# A memory trace missing from the shipped cache is an error, not minutes of CPU (harness.memory.cache); the tests
# of tracing itself turn it back on.
os.environ.setdefault("SEEDFOLD_TRACE", "off")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on loopback with a fresh sqlite store; yields its http URL."""
    from harness.tracking.server import start_server

    root = tmp_path_factory.mktemp("mlflow-server")
    with start_server(root) as server:
        yield server.url


@pytest.fixture(autouse=True)
def _stop_detached_mlflow_servers(tmp_path):
    """Sweeps on SLURM leave a detached MLflow server running for their jobs (by design); a test's must not
    outlive it."""
    yield
    from harness.tracking.server import SERVER_FILE, stop_detached

    for path in tmp_path.rglob(SERVER_FILE):
        stop_detached(path.parent)
