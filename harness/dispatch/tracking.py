"""MLflow for dispatched jobs: the driver creates each experiment once (INFRA.md: concurrent
``set_experiment`` loses runs) and hands its id to jobs; on SLURM a sqlite store is served through an MLflow
server for the driver's lifetime, so jobs never write the sqlite file concurrently."""

from __future__ import annotations

from typing import Any

from harness.config import RunConfig


class JobTracking:
    def __init__(self, kind: str):
        self.kind = kind
        self._server = None
        self._experiments: dict[tuple[str, str], str] = {}

    def uri_for(self, config: RunConfig) -> str:
        uri = config.tracking_uri()
        if self.kind == "slurm" and uri.startswith("sqlite:"):
            if self._server is None:
                from harness.tracking.server import start_server

                self._server = start_server(config.runs_dir, backend_uri=uri)
            uri = self._server.url
        return uri

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
        if self._server is not None:
            self._server.stop()
            self._server = None
