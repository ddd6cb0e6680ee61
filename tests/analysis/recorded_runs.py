"""Recorded runs with known answers, written exactly as the trainer records them (harness/tracking/names.py).

Each run folder ``<root>/<sweep>/<name>-<hash>/`` holds ``config.yaml`` (the nested run config), ``state.json``
(params, tags, status) and ``metrics.csv`` (long format: step, key, value). Validation curves are chosen so the
analysis has a known answer: ``value(C) = level + slope · log10(C / 1e9) + seed offset`` is linear in log FLOPs,
so interpolating to any budget is exact, and seed offsets are symmetric, so the mean over seeds is the level's
own line. Nothing here is SeedFold output; the tests that use it check arithmetic, not science.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from harness.tracking import names

SIGMAS = (0.05, 0.2, 1.0, 4.0, 16.0)  # Å


@dataclass(frozen=True)
class RecordedRun:
    """One run. ``loss_level``/``lddt_level``: the value at 1e9 FLOPs; ``*_slope``: change per decade of FLOPs.

    ``seed_offset`` is added to every validation value of this seed; ``noise`` is the estimator noise the run
    records (``val/loss_noise``; ``val/lddt_noise`` is a tenth of it). ``repeat_from``: a resumed run that
    re-logs steps ≥ this step with ``repeat_shift`` added (None: not resumed).
    """

    name: str
    sweep: str = "width_vs_depth"
    preset: str = "base"
    seed: int = 0
    n_seeds: int = 1
    attention: str = "vanilla"
    c_z: int = 16
    n_pairformer_blocks: int = 2
    n_diffusion_blocks: int = 1
    params: int = 300_000
    flops_per_step: float = 1e8
    max_steps: int = 400
    loss_level: float = 10.0
    loss_slope: float = -2.0
    lddt_level: float = 0.3
    lddt_slope: float = 0.05
    seed_offset: float = 0.0
    noise: float | None = 0.01
    guard_rescued: bool | None = False
    repeat_from: int | None = None
    repeat_shift: float = 0.5
    data_counts: bool = True
    extra_params: dict = field(default_factory=dict)
    # A study's run (harness/sweep/study.py): its configuration, the budgets it completes ("flops:1e+11;steps:400"),
    # its role and profile; None = a run recorded before study designs.
    study_budgets: str | None = None
    study_role: str = "trunk"
    profile: str = ""
    lr: float = 2e-3
    seconds_per_step: float = 0.1  # measured device-seconds per step (time/device_s)
    status: str = "finished"

    @property
    def label(self) -> str:
        if self.study_budgets is not None:
            return f"{self.name}-lr{self.lr:.2g}-S{self.max_steps}-s{self.seed}"
        return f"{self.name}-s{self.seed}" if self.n_seeds > 1 else self.name

    def val_steps(self) -> list[int]:
        """Step 0 and a log-spaced schedule up to ``max_steps``."""
        return sorted({0, *np.unique(np.geomspace(10, self.max_steps, 8).astype(int)).tolist()})

    def loss_at(self, flops: float) -> float:
        return self.loss_level + self.loss_slope * math.log10(flops / 1e9) + self.seed_offset

    def lddt_at(self, flops: float) -> float:
        return self.lddt_level + self.lddt_slope * math.log10(flops / 1e9) + self.seed_offset / 10


def _config(run: RecordedRun) -> dict:
    return {"name": run.label, "seed": run.seed,
            "model": {"preset": run.preset, "c_z": run.c_z, "n_pairformer_blocks": run.n_pairformer_blocks,
                      "n_diffusion_blocks": run.n_diffusion_blocks, "triangle_attention": run.attention},
            "train": {"lr": run.lr, "warmup_steps": 20, "max_steps": run.max_steps,
                      "schedule": {"kind": "wsd" if run.study_budgets is not None else "af3"}}}


def metrics_of(run: RecordedRun) -> pd.DataFrame:
    """The run's long-format metric rows (step, key, value), in the order the trainer writes them."""
    rows: list[tuple[int, str, float]] = []
    for step in range(10, run.max_steps + 1, 10):
        flops = step * run.flops_per_step
        rows += [(step, names.LOSS, 20.0 / math.sqrt(step)), (step, names.FLOPS_CUMULATIVE, flops),
                 (step, names.DEVICE_S_CUMULATIVE, step * run.seconds_per_step),
                 (step, names.EXAMPLES_SEEN, float(step)), (step, names.ITER_PER_S, 10.0),
                 (step, names.SKIPPED_STEPS, 0.0), (step, names.ROLLBACKS, 0.0)]
    for step in run.val_steps():
        flops = step * run.flops_per_step
        if step == 0:
            rows += [(0, names.FLOPS_CUMULATIVE, 0.0), (0, names.EXAMPLES_SEEN, 0.0),
                     (0, names.VAL_LOSS, 50.0 + run.seed_offset), (0, names.VAL_LDDT, 0.05),
                     (0, names.BASELINE_LDDT_GEOMETRIC, 0.12)]
        else:
            rows += [(step, names.VAL_LOSS, run.loss_at(flops)), (step, names.VAL_LDDT, run.lddt_at(flops))]
        rows += [(step, names.VAL_LOSS_DIFFUSION_AT_SIGMA.format(i=i), (1 + i) * 0.1 * (50 if step == 0 else 1)
                  * (1 + 1 / (1 + step)))
                 for i in range(len(SIGMAS))]
        if run.noise is not None:
            rows += [(step, names.VAL_LOSS_NOISE, run.noise), (step, names.VAL_LDDT_NOISE, run.noise / 10)]
    frame = pd.DataFrame(rows, columns=["step", "key", "value"])
    if run.repeat_from is not None:  # the resumed session re-logs what the killed one logged after its checkpoint
        again = frame[(frame["step"] >= run.repeat_from) & (frame["key"] == names.VAL_LOSS)].copy()
        again["value"] += run.repeat_shift
        first = frame[(frame["step"] < run.repeat_from) | (frame["key"] != names.VAL_LOSS)]
        stale = frame[(frame["step"] >= run.repeat_from) & (frame["key"] == names.VAL_LOSS)]
        frame = pd.concat([first, stale, again], ignore_index=True)
    return frame


def params_of(run: RecordedRun) -> dict[str, str]:
    params = {names.PARAM_PARAMS_TOTAL: str(run.params), names.PARAM_PARAMS_NON_EMBEDDING: str(run.params - 1000),
              names.PARAM_FLOPS_PER_EXAMPLE: str(run.flops_per_step / 3), "name": run.label, "seed": str(run.seed)}
    if run.data_counts:
        params |= {names.PARAM_TRAIN_STRUCTURES: "120", names.PARAM_TRAIN_TOKENS: "30000",
                   names.PARAM_VAL_STRUCTURES: "24", names.PARAM_VAL_TOKENS: "6000",
                   names.PARAM_VAL_SIGMAS: json.dumps(list(SIGMAS))}
    return params | {k: str(v) for k, v in run.extra_params.items()}


def tags_of(run: RecordedRun, key: str) -> dict[str, str]:
    tags = {names.TAG_SWEEP: run.sweep, names.TAG_RUN_KEY: key, names.TAG_PRESET: run.preset,
            names.TAG_ATTENTION: run.attention, names.TAG_KIND: "train", names.TAG_STATUS: run.status}
    if run.guard_rescued is not None:
        tags[names.TAG_GUARD_RESCUED] = "true" if run.guard_rescued else "false"
    if run.study_budgets is not None:
        tags |= {names.TAG_STUDY_CONFIG: run.name, names.TAG_STUDY_BUDGETS: run.study_budgets,
                 names.TAG_STUDY_ROLE: run.study_role, names.TAG_PROFILE: run.profile, names.TAG_STUDY_LR: "config"}
    return tags


def write_run(root: Path, run: RecordedRun) -> Path:
    """Write one run folder under ``root``; returns it."""
    config = _config(run)
    key = f"{run.label}-{hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]}"
    folder = root / run.sweep / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / names.RUN_CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
    # As the trainer writes it: the guard's verdict is state.json's own key (MLflow gets it as a tag).
    tags = {k: v for k, v in tags_of(run, key).items() if k != names.TAG_GUARD_RESCUED}
    state = {"status": run.status, "step": run.max_steps, "params": params_of(run), "tags": tags}
    if run.guard_rescued is not None:
        state["guard_rescued"] = run.guard_rescued
    (folder / names.RUN_STATE_FILE).write_text(json.dumps(state, indent=1))
    metrics_of(run).to_csv(folder / names.RUN_METRICS_FILE, index=False, float_format="%.10g")
    return folder


def log_run(tracking_uri: str, experiment_id: str, run: RecordedRun) -> str:
    """Record ``run`` in MLflow as the trainer does (repeated steps logged later, so with later timestamps)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    client = MlflowClient(tracking_uri)
    key = f"{run.label}-mlflow"
    mlrun = client.create_run(experiment_id, tags=tags_of(run, key) | {MLFLOW_RUN_NAME: run.label})
    flat = {f"model.{k}": str(v) for k, v in _config(run)["model"].items()} | params_of(run)
    client.log_batch(mlrun.info.run_id, params=[Param(k, v) for k, v in flat.items()])
    metrics = [Metric(k, float(v), 1_000_000 + i, int(s)) for i, (s, k, v) in
               enumerate(metrics_of(run).itertuples(index=False))]
    for i in range(0, len(metrics), 900):
        client.log_batch(mlrun.info.run_id, metrics=metrics[i:i + 900])
    client.set_terminated(mlrun.info.run_id)
    return mlrun.info.run_id


WIDE_AND_DEEP = {  # preset: (params, FLOPs per step, val/loss at 1e9 FLOPs)
    "base": (300_000, 1.0e8, 10.0),
    "medium": (450_000, 2.0e8, 9.0),
    "large": (900_000, 4.0e8, 8.5),
    "deep_pairformer": (350_000, 1.4e8, 9.7),
    "deep_structure": (380_000, 1.1e8, 10.2),
}


def width_vs_depth(root: Path, seeds: int = 3, spread: float = 0.05, noise: float | None = 0.01,
                   **overrides) -> dict[str, float]:
    """The five configurations with ``seeds`` seeds each (offsets −spread, 0, +spread, ...); returns each
    configuration's true val/loss level (at 1e9 FLOPs; every configuration has slope −2 per decade)."""
    offsets = np.linspace(-spread, spread, seeds) if seeds > 1 else np.zeros(1)
    for preset, (params, flops, level) in WIDE_AND_DEEP.items():
        for seed, offset in enumerate(offsets):
            write_run(root, RecordedRun(
                name=preset, preset=preset, seed=seed, n_seeds=seeds, params=params, flops_per_step=flops,
                loss_level=level, seed_offset=float(offset), noise=noise,
                c_z={"medium": 32, "large": 64}.get(preset, 16),
                n_pairformer_blocks=4 if preset == "deep_pairformer" else 2,
                n_diffusion_blocks=2 if preset == "deep_structure" else 1, **overrides))
    return {preset: level for preset, (_, _, level) in WIDE_AND_DEEP.items()}


def study(root: Path, budgets: tuple[float, ...] = (1e10, 1e11), seeds: int = 3, spread: float = 0.05,
          noise: float | None = 0.01, seconds_per_step: dict[str, float] | None = None,
          profile: str = "study", **overrides) -> dict[str, float]:
    """A study design's completed runs: every configuration of :data:`WIDE_AND_DEEP` trained to each FLOPs budget
    (steps = budget / its FLOPs per step), ``seeds`` seeds each. val/loss at the end of a run that completes budget
    C is the configuration's level + slope · log10(C / 1e9) + its seed offset, exactly. Returns the levels."""
    offsets = np.linspace(-spread, spread, seeds) if seeds > 1 else np.zeros(1)
    seconds = seconds_per_step or {}
    for preset, (params, flops, level) in WIDE_AND_DEEP.items():
        for budget in budgets:
            steps = round(budget / flops)
            for seed, offset in enumerate(offsets):
                write_run(root, RecordedRun(
                    name=preset, preset=preset, seed=seed, n_seeds=seeds, params=params, flops_per_step=flops,
                    max_steps=steps, loss_level=level, seed_offset=float(offset), noise=noise,
                    study_budgets=f"flops:{budget:.4g}", profile=profile,
                    seconds_per_step=seconds.get(preset, 0.1),
                    c_z={"medium": 32, "large": 64}.get(preset, 16),
                    n_pairformer_blocks=4 if preset == "deep_pairformer" else 2,
                    n_diffusion_blocks=2 if preset == "deep_structure" else 1, **overrides))
    return {preset: level for preset, (_, _, level) in WIDE_AND_DEEP.items()}
