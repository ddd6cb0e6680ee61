"""Does a structure metric improve with training? Per run: its value at step 0, its peak and its last value,
against the metric's own recorded noise.

A metric that peaks early and then falls while the loss keeps falling says the loss and the structures disagree
(or the estimator is biased, e.g. by the sampler); a study should know before it draws conclusions from it. A run
*improves* when ``end − start > noise`` and it *ends near its peak* when ``peak − end ≤ noise``; the noise is the
one the run recorded at its last validation (the sampler's draw noise for sampled lDDT, the standard error over
structures for contact precision).
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.seeds import LEVEL_ERROR_OF, NOISE_OF


def structure_trajectories(frame: pd.DataFrame, metrics: tuple[str, ...] = ("val/lddt", "val/contact_precision"),
                           ) -> pd.DataFrame:
    """One row per (run, metric) that logged the metric at step 0 and at least once after: start, peak (and its
    step), end, noise, ``improves``, ``ends_near_peak``."""
    rows = []
    for metric in metrics:
        if metric not in frame:
            continue
        noise_col = NOISE_OF.get(metric) or LEVEL_ERROR_OF.get(metric)
        for run, curve in frame.dropna(subset=[metric]).groupby("run", sort=False):
            curve = curve.sort_values("step")
            if len(curve) < 2 or int(curve["step"].iloc[0]) != 0:
                continue
            values = curve[metric].to_numpy(float)
            peak_i = int(values.argmax())
            noise = float(curve[noise_col].iloc[-1]) if noise_col in curve else math.nan
            noise = 0.0 if math.isnan(noise) else noise
            start, end, peak = values[0], values[-1], values[peak_i]
            rows.append({"run": run, "name": curve["name"].iloc[0], "config": curve["config"].iloc[0],
                         "metric": metric, "start": start, "peak": peak, "peak_step": int(curve["step"].iloc[peak_i]),
                         "end": end, "end_step": int(curve["step"].iloc[-1]), "noise": noise,
                         "improves": bool(end - start > noise), "ends_near_peak": bool(peak - end <= noise)})
    return pd.DataFrame(rows, columns=["run", "name", "config", "metric", "start", "peak", "peak_step", "end",
                                       "end_step", "noise", "improves", "ends_near_peak"])


def trajectory_summary(table: pd.DataFrame) -> list[str]:
    """One sentence per metric: in how many runs it improves by more than its noise and ends near its peak."""
    out = []
    for metric, rows in table.groupby("metric", sort=False):
        good = int((rows["improves"] & rows["ends_near_peak"]).sum())
        early = rows[~rows["ends_near_peak"]]
        text = (f"{metric} rises from step 0 by more than its noise and ends within its noise of its own peak in "
                f"{good} of {len(rows)} runs ({100 * good / len(rows):.0f} %)")
        if len(early):
            text += (f"; {len(early)} end below their peak by more than their noise (peaks at steps "
                     f"{', '.join(str(s) for s in sorted(early['peak_step'].unique())[:6])})")
        out.append(text + ".")
    return out


def trajectory_table(table: pd.DataFrame) -> pd.DataFrame:
    """The per-run rows as the report prints them."""
    if table.empty:
        return table
    return pd.DataFrame({
        "run": table["name"], "metric": table["metric"], "step 0": table["start"].map("{:.4f}".format),
        "peak (step)": [f"{p:.4f} ({s})" for p, s in zip(table["peak"], table["peak_step"], strict=True)],
        "end (step)": [f"{e:.4f} ({s})" for e, s in zip(table["end"], table["end_step"], strict=True)],
        "noise": table["noise"].map("{:.4f}".format),
        "improves": table["improves"].map({True: "yes", False: "no"}),
        "ends near peak": table["ends_near_peak"].map({True: "yes", False: "no"})})
