"""MLflow tracking stores: where runs go, and experiments created once by the driver.

INFRA.md: several processes calling ``mlflow.set_experiment(name)`` for a new experiment at once silently log the
losers' runs into Default. So the driver calls ``get_or_create_experiment`` once and jobs receive the id.
"""

from __future__ import annotations

from pathlib import Path


def default_uri(runs_dir: str | Path) -> str:
    """The project's default store: a sqlite file ``<runs_dir>/mlflow.db`` (artifacts beside it)."""
    path = Path(runs_dir).resolve() / "mlflow.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def artifact_location(runs_dir: str | Path) -> str:
    return (Path(runs_dir).resolve() / "mlartifacts").as_uri()


def get_or_create_experiment(uri: str, name: str, *, artifact_root: str | None = None) -> str:
    """Return the id of experiment ``name`` in the store at ``uri``, creating it if needed."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root)
    except MlflowException:
        # Another driver created it between our lookup and create.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def latest_experiment(uri: str, fallback: str = "seedfold-scaling") -> str:
    """The id of the experiment holding the most recently started run (a sweep's, usually), else ``fallback``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    latest = []
    if experiments:
        latest = client.search_runs(experiments, max_results=1, order_by=["attributes.start_time DESC"])
    return latest[0].info.experiment_id if latest else get_or_create_experiment(uri, fallback)


def runs_page_url(base_url: str, experiment_id: str) -> str:
    """The UI page that lists an experiment's runs (the bare ``#/experiments/<id>`` opens an empty overview)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
