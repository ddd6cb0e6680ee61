"""MLflow tracking stores: where runs go, and experiments created once by the driver.

INFRA.md: several processes calling ``mlflow.set_experiment(name)`` for a new experiment at once silently log the
losers' runs into Default. So the driver calls ``get_or_create_experiment`` once and jobs receive the id. A new
experiment carries the tags of `harness ui`'s study view (``harness.tracking.dashboard``).
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
    """Return the id of experiment ``name`` in the store at ``uri``, creating it (with the dashboard tags) if
    needed."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from harness.tracking.dashboard import dashboard_tags

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root, tags=dashboard_tags())
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



def experiments_of_runs(uri: str, run_ids: list[str]) -> dict[str, list[str]]:
    """Experiment id -> which of the MLflow runs ``run_ids`` (all in the store at ``uri``) it holds."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    held: dict[str, list[str]] = {}
    for run_id in run_ids:
        held.setdefault(client.get_run(run_id).info.experiment_id, []).append(run_id)
    return held
