"""Training for real on the bundled starter set: learning, resume after SIGKILL, the stability guard."""

import csv
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from harness.data.datamodule import StructureDataModule
from harness.tracking import names
from harness.tracking.run_folder import RunFolder
from harness.train.run import train_run


def read_metrics(folder: RunFolder) -> dict[str, list[tuple[int, float]]]:
    series = defaultdict(list)
    with open(folder.metrics_path) as f:
        for row in csv.DictReader(f):
            series[row["key"]].append((int(row["step"]), float(row["value"])))
    return series


@pytest.mark.slow
def test_miniature_learns(make_config, tmp_path):
    config = make_config(max_steps=400, val_every=200, diffusion_batch=4, warmup_steps=20, log_every=10, lr=2e-3)
    state = train_run(config, tmp_path / "run")
    assert state["status"] == "finished" and state["step"] == 400
    m = read_metrics(RunFolder(tmp_path / "run"))
    losses = [v for _, v in m[names.LOSS]]
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert last < 0.75 * first, f"training loss fell only from {first:.3f} to {last:.3f}"
    (first_step, lddt_0), (last_step, lddt_end) = m[names.VAL_LDDT][0], m[names.VAL_LDDT][-1]
    assert (first_step, last_step) == (0, 400)
    assert lddt_end > max(lddt_0 + 0.04, 1.3 * lddt_0), f"validation lDDT {lddt_0:.3f} -> {lddt_end:.3f}"
    assert state["guard_events"] == []
    # Everything docs/DESIGN.md §4 asks a run to record is there, per logged step.
    for key in (names.LR, names.GRAD_NORM, names.EXAMPLES_PER_S, names.ITER_PER_S, names.PEAK_MEMORY_MB,
                names.FLOPS_PER_STEP):
        assert len(m[key]) == len(losses), key
    # Cumulative counters also ride along with every validation (0 at initialisation) and never decrease.
    for key in (names.FLOPS_CUMULATIVE, names.EXAMPLES_SEEN, names.TOKEN_PAIRS_SEEN):
        steps = [s for s, _ in m[key]]
        values = [v for _, v in sorted(m[key])]
        assert set(steps) == {s for s, _ in m[names.LOSS]} | {0, 200, 400}, key
        assert values[0] == 0 and all(b >= a for a, b in zip(values, values[1:], strict=False)), key
    assert dict(m[names.EXAMPLES_SEEN])[400] == 400


def test_short_run_records_and_rerun_is_a_no_op(make_config, tmp_path):
    config = make_config(max_steps=12, val_every=100, checkpoint_every=5, log_every=2)
    state = train_run(config, tmp_path / "run")
    assert state["status"] == "finished" and state["step"] == 12
    client = MlflowClient(tracking_uri=config.tracking_uri())
    run = client.get_run(state["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags[names.TAG_ATTENTION] == "vanilla"
    assert run.data.tags[names.TAG_PRESET] == "base"
    assert run.data.params["model.c_z"] == str(config.model.c_z)
    assert int(run.data.params[names.PARAM_PARAMS_TOTAL]) > 0
    assert state["params"][names.PARAM_PARAMS_TOTAL] == run.data.params[names.PARAM_PARAMS_TOTAL]
    assert state["tags"][names.TAG_RUN_KEY] == "run"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, names.LOSS)]
    assert steps == [2, 4, 6, 8, 10, 12]
    assert [m.step for m in client.get_metric_history(run.info.run_id, names.VAL_LDDT)] == [0, 12]
    lr = [m.value for m in client.get_metric_history(run.info.run_id, names.LR)]
    assert lr == sorted(lr)  # warming up over 5 steps, then flat
    assert lr[0] == pytest.approx(config.train.lr * 2 / 5)  # the rate step 2 was taken with
    assert lr[-1] == pytest.approx(config.train.lr)
    # Rerunning a finished run trains nothing and creates no new MLflow run.
    again = train_run(config, tmp_path / "run")
    assert again["mlflow_run_id"] == state["mlflow_run_id"]
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_checkpoint_holds_full_state_and_loads_weights_only(make_config, tmp_path):
    config = make_config(max_steps=6, val_every=100, checkpoint_every=3)
    train_run(config, tmp_path / "run")
    ckpt = torch.load(RunFolder(tmp_path / "run").last_checkpoint, weights_only=True)
    assert ckpt["global_step"] == 6
    assert ckpt["optimizer_states"][0]["state"], "optimizer moments missing"
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 6
    assert ckpt["callbacks"]["EMA"]["updates"] == 6
    assert ckpt["harness"]["config_hash"] == config.config_hash()
    assert ckpt["harness"]["rng_torch"].dtype == torch.uint8


def test_other_config_in_same_folder_is_refused(make_config, tmp_path):
    from harness.train.run import RunFolderMismatch

    train_run(make_config(max_steps=2, val_every=100), tmp_path / "run")
    with pytest.raises(RunFolderMismatch, match="holds a run of config"):
        train_run(make_config(max_steps=2, val_every=100, lr=5e-4), tmp_path / "run")


def test_sigkill_then_rerun_resumes_same_mlflow_run(make_config, tmp_path):
    config = make_config(max_steps=60, val_every=1000, checkpoint_every=10, log_every=1)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness", "train", str(path), "--run-dir", str(run_dir)]
    folder = RunFolder(run_dir)

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if folder.last_checkpoint.exists() and folder.read_state().get("step", 0) >= 25:
            break
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = folder.read_state()
    assert killed["status"] == "running" and killed["step"] < 60
    run_id = killed["mlflow_run_id"]
    ckpt_step = torch.load(folder.last_checkpoint, weights_only=True)["global_step"]
    assert 10 <= ckpt_step <= killed["step"] + 1
    logged = read_metrics(folder)[names.LOSS]
    assert max(s for s, _ in logged) > ckpt_step, "the kill should land after rows the resume retrains"
    # MLflow only ever received rows a checkpoint covers (they are never retrained).
    client = MlflowClient(tracking_uri=config.tracking_uri())
    assert max(m.step for m in client.get_metric_history(run_id, names.LOSS)) <= ckpt_step

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    state = folder.read_state()
    assert state["status"] == "finished" and state["step"] == 60
    assert state["mlflow_run_id"] == run_id

    runs = client.search_runs([state["experiment_id"]])
    assert [r.info.run_id for r in runs] == [run_id]
    # Each step exactly once, in the run folder and in MLflow, for every key.
    with open(folder.metrics_path) as f:
        pairs = [(row["step"], row["key"]) for row in csv.DictReader(f)]
    assert len(pairs) == len(set(pairs)), "a (step, key) recorded twice in metrics.csv"
    assert [s for s, _ in read_metrics(folder)[names.LOSS]] == list(range(1, 61))
    # (examples seen also rides along with the validations at steps 0 and 60)
    for key, first in ((names.LOSS, 1), (names.LR, 1), (names.EXAMPLES_SEEN, 0)):
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == list(range(first, 61)), key
    # Cumulative counters continue from the checkpoint instead of restarting at zero.
    examples = {m.step: m.value for m in client.get_metric_history(run_id, names.EXAMPLES_SEEN)}
    assert examples[60] == 60


class NonFiniteAt(StructureDataModule):
    """The starter set, with the ground truth of chosen training batches replaced by NaN."""

    bad_batches = {4}

    def train_dataloader(self):
        for i, batch in enumerate(super().train_dataloader()):
            if i in self.bad_batches:
                batch = dict(batch, gt_coords=torch.full_like(batch["gt_coords"], float("nan")))
            yield batch


def test_nonfinite_batch_is_skipped_and_logged(make_config, tmp_path):
    config = make_config(max_steps=10, val_every=100, checkpoint_every=100, log_every=1)
    state = train_run(config, tmp_path / "run", datamodule_factory=NonFiniteAt)
    assert state["status"] == "finished" and state["step"] == 10
    assert state["guard_events"] == [{"step": 4, "event": "skip", "lr_scale": 1.0}]
    client = MlflowClient(tracking_uri=config.tracking_uri())
    skipped = client.get_metric_history(state["mlflow_run_id"], names.SKIPPED_STEPS)
    assert max(m.value for m in skipped) == 1.0
    # Step 4's row (0 skipped) was recorded when step 4 was taken; each (step, key) is recorded once, so the
    # skip between steps 4 and 5 shows from step 5 on.
    assert min(m.step for m in skipped if m.value == 1.0) == 5
    assert sorted(m.step for m in skipped) == list(range(1, 11))
    losses = client.get_metric_history(state["mlflow_run_id"], names.LOSS)
    assert all(m.value == m.value for m in losses)  # no NaN reached the weights


class NonFiniteRun(NonFiniteAt):
    bad_batches = {6, 7, 8}


def test_repeated_nonfinite_rolls_back_and_lowers_lr(make_config, tmp_path):
    config = make_config(max_steps=10, val_every=100, checkpoint_every=3, log_every=1,
                         guard={"max_nonfinite": 3, "lr_factor": 0.5})
    state = train_run(config, tmp_path / "run", datamodule_factory=NonFiniteRun)
    events = state["guard_events"]
    assert [e["event"] for e in events] == ["skip", "skip", "rollback"]
    assert events[-1]["lr_scale"] == 0.5
    client = MlflowClient(tracking_uri=config.tracking_uri())
    rollbacks = client.get_metric_history(state["mlflow_run_id"], names.ROLLBACKS)
    assert min(m.step for m in rollbacks if m.value == 1.0) == 7  # rolled back between steps 6 and 7
    assert events[-1]["checkpoint"] == "step-00000006.ckpt"  # the newest good one
    # Kept: the newest two (after the rollback: not yet a clean window behind them) and the rollback target.
    kept = {e["step"]: e["good"] for e in state["checkpoints"]}
    assert kept == {6: True, 9: False, 10: False}
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step-*.ckpt")) == [
        "step-00000006.ckpt", "step-00000009.ckpt", "step-00000010.ckpt"]
    assert state["guard_rescued"] is True
    assert client.get_run(state["mlflow_run_id"]).data.tags[names.TAG_GUARD_RESCUED] == "true"
    assert max(m.value for m in rollbacks) == 1.0
    lrs = {m.step: m.value for m in client.get_metric_history(state["mlflow_run_id"], names.LR)}
    assert lrs[9] == pytest.approx(0.5 * config.train.lr * min(1.0, 10 / config.train.warmup_steps))
