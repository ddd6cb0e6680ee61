"""Two-process CPU DDP (gloo) with gradient accumulation, started directly (no SLURM): each optimizer step's
gradient is all-reduced once, in the backward of its last micro-batch (the others run under DDP's ``no_sync``),
and the step still takes the gradient of the global batch's mean loss."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tracking import names
from harness.tracking.run_folder import RunFolder
from tests.harness.train.test_train import read_metrics

ROOT = Path(__file__).resolve().parents[3]
STEPS, ACCUMULATION = 2, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_gradient_all_reduce_per_optimizer_step(make_config, tmp_path):
    # global batch 6 = batch 1 x 2 ranks x 3 micro-batches
    config = make_config(devices=2, accelerator="cpu", global_batch=2 * ACCUMULATION, max_steps=STEPS,
                         val_every=100, val_batches=1, val_train_probe=False, checkpoint_every=100, log_every=1,
                         grad_clip=1e9)
    config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"enabled": False})})
    (tmp_path / "config.json").write_text(config.model_dump_json())
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "LOCAL_RANK", "WORLD_SIZE"))}
    env |= {"PYTHONPATH": f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "WORLD_SIZE": "2", "NODE_RANK": "0", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "tests.harness.train.ddp_worker", str(tmp_path / "config.json"),
            str(tmp_path / "run"), str(tmp_path)]
    procs = [subprocess.Popen(args, cwd=ROOT, env=env | {"LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    try:
        outputs = [p.communicate(timeout=900)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]

    for rank in ranks:
        # every micro-batch ran, and only each step's last one reduced (the hook is called once per bucket)
        assert sorted(rank["weights"]) == [f"{s}/{m}" for s in range(STEPS) for m in range(ACCUMULATION)]
        assert {tuple(call) for call in rank["reduced"]} == {(s, ACCUMULATION - 1) for s in range(STEPS)}
        per_step = [sum(1 for call in rank["reduced"] if call[0] == s) for s in range(STEPS)]
        assert per_step[0] == per_step[1] >= 1
    assert len(ranks[0]["reduced"]) == len(ranks[1]["reduced"])

    # The synchronised gradient of step 1 is that of the mean loss over both ranks' 3 micro-batches:
    # 2θ · mean(weights) (θ is the same initialisation on both ranks), so its norm is 2|θ| · mean(weights);
    # a gradient that missed a rank's or a micro-batch's share would have another norm.
    assert ranks[0]["theta_sq"] == ranks[1]["theta_sq"]
    weights = [r["weights"][f"0/{m}"] for r in ranks for m in range(ACCUMULATION)]
    assert len(set(weights)) == 2 * ACCUMULATION
    expected = 2 * math.sqrt(ranks[0]["theta_sq"]) * sum(weights) / len(weights)
    metrics = {k: dict(v) for k, v in read_metrics(RunFolder(tmp_path / "run")).items()}
    assert metrics[names.GRAD_NORM][1] == pytest.approx(expected, rel=1e-5)
    assert metrics[names.EXAMPLES_SEEN][1] == 2 * ACCUMULATION
