"""The run folder's metric record and its copy into a real MLflow store: exactly once, durable rows only."""

import json

import pytest
from mlflow.tracking import MlflowClient

from harness.tracking.record import MetricRecord, read_rows
from harness.tracking.run_folder import RunFolder
from harness.tracking.sync import CURSOR_FILE, TrackingSync, Uploader


def rows(path):
    return [(r.step, r.key, r.value) for r in read_rows(path, 0)]


def test_record_keeps_each_step_key_once_and_cuts_back_on_resume(tmp_path):
    record = MetricRecord(tmp_path / "metrics.csv")
    record.append(0, {"val/loss": 3.0})
    for step in range(1, 8):
        record.append(step, {"train/loss": 1.0 / step})
    assert record.append(7, {"train/loss": 99.0, "guard/skipped_steps": 1.0}) == {"guard/skipped_steps": 1.0}
    assert record.append(5, {"train/loss": 42.0}) == {}  # behind the last step: refused
    with open(tmp_path / "metrics.csv", "a") as f:
        f.write("8,train/lo")  # a SIGKILL mid-line
    # Resume from the checkpoint at step 5: steps 6, 7 and the torn line go.
    assert MetricRecord(tmp_path / "metrics.csv").truncate_after(5) == 4
    again = MetricRecord(tmp_path / "metrics.csv")
    assert again.append(5, {"train/loss": 0.0, "val/loss": 2.0}) == {"val/loss": 2.0}
    again.append(6, {"train/loss": 0.6})
    got = rows(tmp_path / "metrics.csv")
    assert [(s, k) for s, k, _ in got] == [(0, "val/loss")] + [(s, "train/loss") for s in range(1, 6)] + [
        (5, "val/loss"), (6, "train/loss")]
    assert got[-1][2] == 0.6 and got[5][2] == pytest.approx(1 / 5)


def make_sync(folder: RunFolder, uri: str) -> TrackingSync:
    return TrackingSync(folder, uri, experiment_name="record-sync",
                        identity=lambda: ({"run_key": folder.path.name}, {"model.c_z": "8"}))


def test_only_durable_rows_reach_mlflow_once_even_after_a_crash_mid_batch(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    folder = RunFolder(tmp_path / "run")
    folder.update_state(status="running", durable_step=-1)
    for step in range(1, 11):
        folder.append_metrics(step, {"train/loss": float(step), "train/lr": 0.1})
    sync = make_sync(folder, uri)
    assert sync.sync_once() == 0  # no checkpoint yet: nothing may go
    run_id = folder.read_state()["mlflow_run_id"]
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(run_id).data.params["model.c_z"] == "8"

    folder.update_state(durable_step=4)
    assert sync.sync_once() == 8
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2, 3, 4]

    # A process killed after MLflow took rows 5..7 but before the cursor moved: the range is in flight.
    cursor = json.loads((folder.path / CURSOR_FILE).read_text())
    pending = read_rows(folder.metrics_path, cursor["offset"])
    from mlflow.entities import Metric

    client.log_batch(run_id, metrics=[Metric(r.key, r.value, 0, r.step) for r in pending[:5]])
    cursor["in_flight"] = [cursor["offset"], pending[5].end]
    (folder.path / CURSOR_FILE).write_text(json.dumps(cursor))

    folder.update_state(status="finished", guard_rescued=False)
    fresh = make_sync(folder, uri)  # the next process
    assert fresh.sync_once() == 20 - 8 - 5
    for key in ("train/loss", "train/lr"):
        assert sorted(m.step for m in client.get_metric_history(run_id, key)) == list(range(1, 11)), key
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["guard_rescued"] == "false" and run.data.tags["harness_status"] == "finished"
    assert fresh.sync_once() == 0 and fresh.pending_rows() == 0
    # Found again by the folder's uid, not created twice, if state.json lost the id.
    state = folder.read_state()
    del state["mlflow_run_id"]
    folder.state_path.write_text(json.dumps(state))
    fresh.ensure_run()
    assert folder.read_state()["mlflow_run_id"] == run_id
    assert len(client.search_runs([state["experiment_id"]])) == 1


def test_uploader_survives_an_unreachable_store_and_closes_within_its_bound(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.update_state(status="finished")
    folder.append_metrics(1, {"train/loss": 1.0})
    # Nothing listens on port 9 (discard); every attempt fails fast.
    uploader = Uploader(make_sync(folder, "http://127.0.0.1:9"), interval_s=0.05).start()
    import time

    time.sleep(0.5)
    t0 = time.monotonic()
    assert uploader.close(timeout_s=20) is False
    assert time.monotonic() - t0 < 20
    assert uploader.failures >= 2 and uploader.last_error
    assert rows(folder.metrics_path) == [(1, "train/loss", 1.0)]  # still in the folder, for backfill


def test_mlflow_timestamps_are_the_training_times_of_the_rows(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    folder = RunFolder(tmp_path / "run")
    folder.update_state(status="finished")
    record = MetricRecord(folder.metrics_path)
    t0 = 1_700_000_000_000  # logged long before the upload below
    for step in range(1, 4):
        record.append(step, {"train/loss": 1.0 / step}, time_ms=t0 + 1000 * step)
    lines = folder.metrics_path.read_text().splitlines()
    assert lines[:2] == ["step,key,value,time_ms", f"1,train/loss,1.0,{t0 + 1000}"]
    make_sync(folder, uri).sync_once()
    history = MlflowClient(tracking_uri=uri).get_metric_history(folder.read_state()["mlflow_run_id"], "train/loss")
    assert sorted((m.step, m.timestamp) for m in history) == [(s, t0 + 1000 * s) for s in (1, 2, 3)]
    # cutting back on resume keeps the column
    assert MetricRecord(folder.metrics_path).truncate_after(2) == 1
    assert folder.metrics_path.read_text().splitlines()[0] == "step,key,value,time_ms"


def test_a_record_begun_without_times_stays_three_columns_and_syncs_with_upload_times(tmp_path):
    import time

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    folder = RunFolder(tmp_path / "run")
    folder.update_state(status="finished")
    folder.metrics_path.parent.mkdir(parents=True, exist_ok=True)
    folder.metrics_path.write_text("step,key,value\n1,train/loss,1.0\n")  # written by an older trainer
    MetricRecord(folder.metrics_path).append(2, {"train/loss": 0.5}, time_ms=123)  # a resumed run appends
    assert folder.metrics_path.read_text() == "step,key,value\n1,train/loss,1.0\n2,train/loss,0.5\n"
    before = int(time.time() * 1000)
    make_sync(folder, uri).sync_once()
    history = MlflowClient(tracking_uri=uri).get_metric_history(folder.read_state()["mlflow_run_id"], "train/loss")
    assert sorted(m.step for m in history) == [1, 2] and all(m.timestamp >= before for m in history)
