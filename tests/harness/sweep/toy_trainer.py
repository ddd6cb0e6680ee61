"""A real, tiny trainer with ``train_run``'s contract, to test dispatch without the SeedFold model.

It fits y = 3x + 1 by SGD, one step per ``step_s`` seconds, checkpoints every ``train.checkpoint_every`` steps
(JSON: step, weights), resumes from the checkpoint, appends every step to metrics.csv, keeps status/step/
last_metrics/mlflow_run_id in state.json and logs to the MLflow run recorded there (created on first start).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from harness.tracking import names
from harness.tracking.atomic import atomic_write_text
from harness.tracking.run_folder import RunFolder


def toy_train(config, run_dir, *, experiment_id=None, tags=None):
    # Read per call, not at import: a warm-start zygote imports this module before it forks the jobs, and a job's
    # own environment (a test's TOY_STEP_S) is applied in the forked job, after that import.
    step_s = float(os.environ.get("TOY_STEP_S", "0.05"))
    folder = RunFolder(run_dir)
    folder.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = folder.read_state()
    if state.get("status") == "finished" and state.get("step", -1) >= config.train.max_steps:
        return state
    fail_file = Path(run_dir) / "FAIL_ONCE"
    if fail_file.exists():  # a test's way to make the first attempt crash
        fail_file.unlink()
        raise RuntimeError("toy trainer: deliberate crash")
    ckpt = folder.last_checkpoint
    step, w, b = 0, 0.0, 0.0
    start = ckpt if ckpt.exists() else None
    if start is None and config.init_from is not None:  # a study's branch: the parent's milestone, which must exist
        start = Path(config.init_from.run_dir) / names.CHECKPOINT_DIR / f"step-{config.init_from.step:08d}.ckpt"
        folder.update_state(branched_from={"run": str(config.init_from.run_dir), "step": config.init_from.step})
    if start is not None:
        saved = json.loads(start.read_text())
        step, w, b = saved["step"], saved["w"], saved["b"]
    run_id = state.get("mlflow_run_id")
    client = None
    if config.tracking.enabled and experiment_id is not None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=config.tracking_uri())
        if run_id is None:
            run_id = client.create_run(experiment_id, run_name=config.name, tags=dict(tags or {})).info.run_id
    folder.update_state(status="running", mlflow_run_id=run_id, experiment_id=experiment_id,
                        tracking_uri=config.tracking_uri() if client else None,
                        pid=os.getpid(), ppid=os.getppid(), starts=state.get("starts", 0) + 1)
    xs = [i / 8 for i in range(-8, 9)]
    lr = config.train.lr
    while step < config.train.max_steps:
        gw = sum(2 * (w * x + b - (3 * x + 1)) * x for x in xs) / len(xs)
        gb = sum(2 * (w * x + b - (3 * x + 1)) for x in xs) / len(xs)
        w, b = w - lr * gw, b - lr * gb
        step += 1
        loss = sum((w * x + b - (3 * x + 1)) ** 2 for x in xs) / len(xs)
        folder.append_metrics(step, {names.LOSS: loss})
        if client is not None:
            client.log_metric(run_id, names.LOSS, loss, step=step)
        folder.update_state(step=step, last_metrics={names.LOSS: loss})
        if step % config.train.checkpoint_every == 0 or step == config.train.max_steps:
            atomic_write_text(ckpt, json.dumps({"step": step, "w": w, "b": b}))
        if step in config.train.milestone_steps:
            milestone = folder.checkpoint_dir / f"step-{step:08d}.ckpt"
            atomic_write_text(milestone, json.dumps({"step": step, "w": w, "b": b}))
        time.sleep(step_s)
    if client is not None:
        client.set_terminated(run_id, status="FINISHED")
    last = folder.read_state().get("last_metrics", {})
    return folder.update_state(status="finished", step=step, last_metrics=last | {names.VAL_LOSS: last[names.LOSS]})
