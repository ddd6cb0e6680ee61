"""The memorisation table: gap growth val − train probe between step 0 and the end, per configuration."""

import numpy as np
import pandas as pd
import pytest

from analysis.memorisation import memorisation_summary, memorisation_table, run_gaps


def frame_of(growth: dict[str, list[float]], noise: float = 0.01) -> pd.DataFrame:
    """Runs whose val/loss − train_probe/loss gap is 0.2 at step 0 and 0.2 + growth at step 100."""
    rows = []
    for config, values in growth.items():
        for seed, g in enumerate(values):
            run = f"{config}-s{seed}"
            rows += [{"run": run, "config": config, "seed": seed, "step": 0, "val/loss": 8.0,
                      "train_probe/loss": 7.8, "val/loss_noise": noise, "train_probe/loss_noise": noise},
                     {"run": run, "config": config, "seed": seed, "step": 50, "val/loss": 5.0,
                      "train_probe/loss": np.nan, "val/loss_noise": noise, "train_probe/loss_noise": np.nan},
                     {"run": run, "config": config, "seed": seed, "step": 100, "val/loss": 4.0,
                      "train_probe/loss": 3.8 - g, "val/loss_noise": noise, "train_probe/loss_noise": noise}]
    return pd.DataFrame(rows)


def test_gap_growth_is_val_minus_probe_at_the_end_minus_at_step_0():
    gaps = run_gaps(frame_of({"big": [0.5]}, noise=0.03)).iloc[0]
    assert gaps["gap0"] == pytest.approx(0.2) and gaps["gap"] == pytest.approx(0.7)
    assert gaps["memorised"] == pytest.approx(0.5) and gaps["step"] == 100
    assert gaps["noise"] == pytest.approx(np.sqrt(4 * 0.03**2))  # four independent estimator noises


def test_verdicts_resolve_only_what_the_seeds_and_noise_support():
    table = memorisation_table(frame_of({"big": [0.50, 0.55, 0.52], "small": [0.01, -0.02, 0.02],
                                         "single": [0.9]})).set_index("configuration")
    assert table.loc["big", "verdict"].startswith("memorised")
    assert table.loc["small", "verdict"] == "no memorisation resolved at this budget"
    assert table.loc["single", "verdict"] == "not resolved (one seed)"
    assert "big" in memorisation_summary(table.reset_index())


def test_the_noise_floor_keeps_agreeing_seeds_from_resolving_a_tiny_growth():
    # Three seeds agreeing to 1e-6 on a growth of 0.001, with estimator noise 0.01 per value: not resolved.
    table = memorisation_table(frame_of({"tiny": [0.001, 0.001001, 0.000999]}, noise=0.01))
    assert table["verdict"].iloc[0] == "no memorisation resolved at this budget"


def test_runs_without_the_probe_give_no_table():
    frame = frame_of({"big": [0.5, 0.5]}).drop(columns=["train_probe/loss", "train_probe/loss_noise"])
    assert memorisation_table(frame).empty and memorisation_summary(memorisation_table(frame)) is None
