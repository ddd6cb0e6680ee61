"""`harness report --log-mlflow` logs the report run beside the runs it reports on."""

import pytest
from mlflow.tracking import MlflowClient

from analysis.collect import RunRecord
from harness.cli.report import report_experiment
from harness.tracking.store import default_uri, get_or_create_experiment


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with experiment ``sweep`` holding runs a, b and experiment ``other`` holding run c."""
    uri = default_uri(tmp_path_factory.mktemp("store"))
    client = MlflowClient(uri)
    ids = {"sweep": get_or_create_experiment(uri, "sweep"), "other": get_or_create_experiment(uri, "other")}
    runs = {name: client.create_run(ids[exp], run_name=name).info.run_id
            for name, exp in (("a", "sweep"), ("b", "sweep"), ("c", "other"))}
    records = {name: RunRecord(name=name, run_id=run_id, source=f"{uri}#{run_id}") for name, run_id in runs.items()}
    return uri, ids, records


def test_the_report_goes_to_the_experiment_of_its_runs(store):
    uri, ids, records = store
    assert report_experiment(uri, [records["a"], records["b"]], None) == (
        ids["sweep"], f"experiment id {ids['sweep']}, beside the report's 2 runs")


def test_experiment_option_wins(store):
    uri, ids, records = store
    assert report_experiment(uri, [records["a"]], "other") == (ids["other"], "experiment 'other'")


def test_runs_of_several_experiments_or_none_from_mlflow_go_to_the_default(store):
    uri, ids, records = store
    default, where = report_experiment(uri, list(records.values()), None)
    assert MlflowClient(uri).get_experiment(default).name == "seedfold-scaling"
    assert where == (f"experiment 'seedfold-scaling' (the report's runs span experiment ids "
                     f"{', '.join(sorted(ids.values()))})")
    folder_only = RunRecord(name="d", run_id=records["a"].run_id, source="/runs/sweep/d")
    assert report_experiment(uri, [folder_only], None) == (
        default, "experiment 'seedfold-scaling' (no MLflow run read)")
