"""benchmarks/sampler_trajectory.py on a briefly trained run: the table it prints holds every sampler setting."""

import os
import re
import subprocess
import sys
from pathlib import Path

from harness.config import RunConfig, parse_config
from harness.train.run import train_run

ROOT = Path(__file__).parents[2]


def test_prints_the_x0_lddt_along_the_trajectory_for_each_setting(tmp_path):
    config = parse_config(RunConfig, {
        "name": "traj", "runs_dir": str(tmp_path / "runs"), "model": {"preset": "base", "miniature": True},
        "data": {"crop_size": 32, "max_msa_rows": 4, "val_max_tokens": 32},
        "train": {"max_steps": 2, "val_every": 100, "val_batches": 1, "diffusion_batch": 2, "max_cycles": 1,
                  "threads": 1, "checkpoint_every": 2, "val_sampling_steps": 10, "val_train_probe": False},
    }, "<test>")
    train_run(config, tmp_path / "run")
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/sampler_trajectory.py"), str(tmp_path / "run"),
                          "--crops", "1", "--samples", "2", "--steps", "10"],
                         capture_output=True, text=True, timeout=900, cwd=ROOT,
                         env=os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "250"})
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {line.split("│")[1].strip(): line for line in res.stdout.splitlines() if line.count("│") > 10}
    assert {"AF3 (γ₀ 0.8, η 1.5)", "η 1.0", "η 1.0, no churn", "η 1.5, no churn"} <= set(rows)
    for line in rows.values():
        cells = [float(v) for v in re.findall(r"\d\.\d{3}", line)]
        assert len(cells) >= 11 and all(0.0 <= v <= 1.0 for v in cells)  # 10 steps, the final sample ± s.e.
    assert re.search(r"one-shot denoising of truth \+ σ noise: σ 0.5 Å 0\.\d{3} ± ", res.stdout)
