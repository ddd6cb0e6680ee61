"""Did a configuration memorise its training set? The validation estimator's loss on the fixed validation
crops against the same estimator on fixed crops of training structures (``train_probe/loss``, recorded at
step 0 and at the end; ``harness/train/validation.py``).

At step 0 the two sets differ only in how hard they are (the model has seen neither); at the end they also
differ by what training fitted to the training structures alone. The difficulty difference scales with the
loss (at step 0 the validation crops' loss is ~15 % above the probe's, and stays ~15 % above it as both fall
by half), so the gap is taken relative, as a log ratio, per run:

    gap(t) = ln(val/loss(t) / train_probe/loss(t)),     memorised = gap(end) − gap(0),

and a configuration's ``memorised`` over its seeds gets an :class:`analysis.seeds.Estimate` whose noise floor
combines the four estimator noises (independent draws; ln x has noise σ/x). Called *memorised* when its
interval lies above 0, *no memorisation resolved* otherwise. A larger model fitting the training structures
better than the validation ones is what makes a small starter set unable to rank configurations by capacity.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.seeds import estimate

VAL, PROBE = "val/loss", "train_probe/loss"
VAL_NOISE, PROBE_NOISE = "val/loss_noise", "train_probe/loss_noise"


def _at(run: pd.DataFrame, column: str, step: int) -> float:
    row = run[run["step"] == step]
    return float(row[column].iloc[0]) if not row.empty and column in row and pd.notna(row[column].iloc[0]) else math.nan


def run_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run that recorded the probe at step 0 and at its last probe step: config, seed, the log-ratio gaps
    and the noise (std) of ``memorised``."""
    if PROBE not in frame:
        return pd.DataFrame(columns=["run", "config", "seed", "step", "gap0", "gap", "memorised", "noise"])
    rows = []
    for run, group in frame.dropna(subset=[PROBE]).groupby("run", sort=False):
        steps = sorted(group["step"].unique())
        if len(steps) < 2 or steps[0] != 0:
            continue
        full = frame[frame["run"] == run]
        end = int(steps[-1])
        values = {(c, t): _at(full, c, t) for c in (VAL, PROBE, VAL_NOISE, PROBE_NOISE) for t in (0, end)}
        gap0 = math.log(values[VAL, 0] / values[PROBE, 0])
        gap = math.log(values[VAL, end] / values[PROBE, end])
        relative = [values[n, t] / values[c, t] for c, n in ((VAL, VAL_NOISE), (PROBE, PROBE_NOISE)) for t in (0, end)]
        noise = math.sqrt(sum(r**2 for r in relative)) if all(np.isfinite(relative)) else math.nan
        rows.append({"run": run, "config": group["config"].iloc[0], "seed": group["seed"].iloc[0], "step": end,
                     "gap0": gap0, "gap": gap, "memorised": gap - gap0, "noise": noise})
    return pd.DataFrame(rows)


def memorisation_table(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per configuration: how far val/loss lies above the train probe's at step 0 and at the end
    (means over seeds), what training added to the log ratio with its interval, and the verdict. Empty when no
    run recorded the probe."""
    gaps = run_gaps(frame)
    rows = []
    for config, group in gaps.groupby("config", sort=True):
        est = estimate(group["memorised"].to_numpy(), group["noise"].to_numpy(), confidence)
        if not est.seed_spread_known:
            verdict = "not resolved (one seed)"
        elif est.low > 0:
            verdict = "memorised: the training structures fit better than the validation ones"
        elif est.high < 0:
            verdict = "validation improved more than the training probe"
        else:
            verdict = "no memorisation resolved at this budget"
        rows.append({"configuration": config, "seeds": est.n_seeds, "step": int(group["step"].max()),
                     "val above probe at step 0": f"{math.expm1(group['gap0'].mean()):+.1%}",
                     "val above probe at the end": f"{math.expm1(group['gap'].mean()):+.1%}",
                     "memorised: growth of ln(val / probe) [95% CI]": est.text(3), "verdict": verdict})
    return pd.DataFrame(rows)


def memorisation_summary(table: pd.DataFrame) -> str | None:
    """One sentence for the report's data section, None when no run recorded the probe."""
    if table.empty:
        return None
    memorised = table[table["verdict"].str.startswith("memorised")]["configuration"].tolist()
    if memorised:
        return ("Memorisation: " + ", ".join(memorised) + " fit the training structures better, relative to the "
                "validation structures, than at initialisation (table 'memorisation'); their validation numbers "
                "reflect a set too small for their capacity.")
    return ("Memorisation: no configuration's val/loss rose relative to the train probe's beyond its interval "
            "(table 'memorisation'): at this budget the training set is not the limit.")
