"""What the runs recorded of the validation estimator's contract, said plainly for runs that predate it.

Old runs (recorded before ``harness/train/validation.py``) lack the estimator noise, the σ-resolved terms,
the geometric baseline, the data counts and the guard tag; the report still reads them, and these notes say
what is missing and what that means for the numbers shown.
"""

from __future__ import annotations

import re

import pandas as pd

from analysis.collect import NAMES, RecordNames

SIGMA_COLUMN = re.compile(r"^val/loss_diffusion_sigma_\d+$")


def sigma_columns(frame: pd.DataFrame) -> list[str]:
    """The per-σ-node diffusion loss columns (``val/loss_diffusion_sigma_00``, ...), in node order."""
    return sorted(c for c in frame.columns if SIGMA_COLUMN.match(str(c)))


def _consequences(names: RecordNames) -> dict[str, str]:
    return {
        names.val_loss_noise: f"intervals of {names.val_loss} come from the seeds alone",
        names.val_lddt_noise: f"intervals of {names.val_lddt} come from the seeds alone",
        names.val_loss_diffusion_noise: f"intervals of {names.val_loss_diffusion} come from the seeds alone",
        names.val_smooth_lddt_noise: f"intervals of {names.val_smooth_lddt} come from the seeds alone",
        names.val_loss_diffusion: "no quadrature-weighted diffusion loss",
        names.val_distogram_ce: "no distogram cross-entropy",
        names.val_smooth_lddt: "no smooth lDDT",
        names.baseline_lddt_geometric: f"{names.val_lddt} is shown beside its step-0 value only",
    }


def coverage_notes(frame: pd.DataFrame, names: RecordNames = NAMES) -> list[str]:
    """Lines on the parts of the contract that runs lack: what is missing from every run in one line (old
    runs), then one line per part only some runs have, each with what it means for the numbers shown."""
    runs = frame.drop_duplicates("run")
    n = len(runs)
    parts: list[tuple[str, int, str]] = []  # (what, runs that have it, consequence)
    for key, consequence in _consequences(names).items():
        have = int(frame.dropna(subset=[key])["run"].nunique()) if key in frame else 0
        parts.append((key, have, consequence))
    sigma = sigma_columns(frame)
    have_sigma = int(frame.dropna(subset=sigma, how="all")["run"].nunique()) if sigma else 0
    parts.append((f"{names.val_loss_diffusion_at_sigma.format(i=0)}, ... (per σ)", have_sigma,
                  "no per-σ profile"))
    counts = ["train_structures", "train_tokens", "val_structures", "val_tokens"]
    have_counts = n - (int(runs[counts].isna().all(axis=1).sum()) if set(counts) <= set(runs) else n)
    parts.append((f"{names.train_structures}, ... (data counts)", have_counts, "the data section says so"))
    have_tag = int((runs["guard_source"] == "tag").sum()) if "guard_source" in runs else 0
    parts.append((f"tag {names.tag_guard_rescued}", have_tag, "guard rescue read from the guard counters"))

    notes = []
    absent = [p for p in parts if p[1] == 0]
    if absent:
        notes.append(f"None of the {n} runs recorded " + ", ".join(p[0] for p in absent)
                     + " (their trainer predates these records): "
                     + "; ".join(p[2] for p in absent) + ".")
    notes += [f"{what}: recorded by {have} of {n} runs; for the others {consequence}"
              for what, have, consequence in parts if 0 < have < n]
    if "guard_source" in runs:
        unknown = int((runs["guard_source"] == "").sum())
        if unknown:
            notes.append(f"guard rescue unknown for {unknown} of {n} runs (neither the tag nor the counters)")
    return notes
