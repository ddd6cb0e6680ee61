"""The memorisation table: gap growth val − train probe between step 0 and the end, per configuration."""

import numpy as np
import pandas as pd
import pytest

from analysis.memorisation import memorisation_summary, memorisation_table, run_gaps


def frame_of(growth: dict[str, list[float]], noise: float = 0.01) -> pd.DataFrame:
    """Runs with ln(val/loss / train_probe/loss) = ln 1.25 at step 0 and ln 1.25 + growth at step 100."""
    rows = []
    for config, values in growth.items():
        for seed, g in enumerate(values):
            run = f"{config}-s{seed}"
            rows += [{"run": run, "config": config, "seed": seed, "step": 0, "val/loss": 8.0,
                      "train_probe/loss": 6.4, "val/loss_noise": noise, "train_probe/loss_noise": noise},
                     {"run": run, "config": config, "seed": seed, "step": 50, "val/loss": 5.0,
                      "train_probe/loss": np.nan, "val/loss_noise": noise, "train_probe/loss_noise": np.nan},
                     {"run": run, "config": config, "seed": seed, "step": 100, "val/loss": 4.0,
                      "train_probe/loss": 3.2 * np.exp(-g), "val/loss_noise": noise,
                      "train_probe/loss_noise": noise}]
    return pd.DataFrame(rows)


def test_gap_growth_is_the_change_of_the_log_ratio_val_over_probe():
    gaps = run_gaps(frame_of({"big": [0.5]}, noise=0.03)).iloc[0]
    assert gaps["gap0"] == pytest.approx(np.log(1.25)) and gaps["gap"] == pytest.approx(np.log(1.25) + 0.5)
    assert gaps["memorised"] == pytest.approx(0.5) and gaps["step"] == 100
    # Four independent estimator noises, each relative to its value (the noise of a log).
    relative = [0.03 / 8.0, 0.03 / 6.4, 0.03 / 4.0, 0.03 / (3.2 * np.exp(-0.5))]
    assert gaps["noise"] == pytest.approx(np.sqrt(np.sum(np.square(relative))))


def test_a_gap_that_shrinks_with_the_loss_is_not_memorisation():
    # Both losses halve and val stays 25 % above the probe: the raw difference falls, the log ratio does not.
    table = memorisation_table(frame_of({"same": [0.0, 0.001, -0.001]}))
    assert table["verdict"].iloc[0] == "no memorisation resolved at this budget"
    assert table["val above probe at step 0"].iloc[0] == table["val above probe at the end"].iloc[0] == "+25.0%"


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
