"""MLflow for dispatched jobs: the driver creates each experiment once (INFRA.md: concurrent
``set_experiment`` loses runs) and hands its id to jobs; on SLURM a sqlite store is served through a detached
MLflow server (``harness.tracking.server.serve_detached``), so jobs never write the sqlite file concurrently and
keep logging when the driver stops (with credentials when it is bound beyond loopback, ``harness.tracking.auth``).
A non-sqlite ``tracking.uri`` (a server or database every node reaches) is handed to jobs as it is."""

from __future__ import annotations

import hashlib
from typing import Any

from harness.config import RunConfig


class JobTracking:
    def __init__(self, kind: str):
        self.kind = kind
        self._url: str | None = None
        self._experiments: dict[tuple[str, str], str] = {}

    def uri_for(self, config: RunConfig) -> str:
        uri = config.tracking_uri()
        if self.kind == "slurm" and uri.startswith("sqlite:"):
            if self._url is None:
                self._url = self._serve(config, uri)
            uri = self._url
        return uri

    def _serve(self, config: RunConfig, backend_uri: str) -> str:
        """The server URL for this store. Its port is derived from the store's path, so a driver started again
        (after Ctrl-C, say) finds the server its still-running jobs log to, or restarts it on the same port.
        A server bound beyond loopback requires credentials: this process takes them into its environment, and
        the jobs it submits inherit them (never on a command line)."""
        from harness.tracking.auth import is_loopback, use_credentials
        from harness.tracking.server import serve_detached

        t = config.tracking
        url = serve_detached(config.runs_dir, backend_uri, port=stable_port(backend_uri), host=t.server_host,
                             advertise_host=t.advertise_host)
        if not is_loopback(t.server_host):
            use_credentials(config.runs_dir)
        return url

    def experiment_id(self, uri: str, name: str) -> str:
        if (uri, name) not in self._experiments:
            from harness.tracking.store import get_or_create_experiment

            self._experiments[(uri, name)] = get_or_create_experiment(uri, name)
        return self._experiments[(uri, name)]

    def job_config(self, config: RunConfig) -> tuple[dict[str, Any], str | None]:
        """The config mapping a job receives (tracking.uri set to what jobs should use) and the experiment id."""
        raw = config.model_dump(mode="json")
        if not config.tracking.enabled:
            return raw, None
        uri = self.uri_for(config)
        raw["tracking"]["uri"] = uri
        return raw, self.experiment_id(uri, config.tracking.experiment)

    def close(self) -> None:
        """Forget the URL; the detached server keeps running for jobs still logging (``harness tracking stop``)."""
        self._url = None


def stable_port(key: str) -> int:
    """A port in 20000..39999 derived from ``key``."""
    return 20000 + int(hashlib.sha256(key.encode()).hexdigest(), 16) % 20000
