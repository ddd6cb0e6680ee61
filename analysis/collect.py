"""Read the runs of a sweep back from MLflow and/or run folders into tidy pandas tables.

Two tables come out of a list of :class:`RunRecord`:

- :func:`tidy` — one row per (run, step): identity columns (``run`` = run key, ``name``, ``config`` = the
  name without its seed suffix, ``seed``, ``run_id``, ``sweep``, ``preset``, ``attention``, ``width``,
  ``depth_pairformer``, ``depth_structure``, ``lr``, ``warmup``, ``params``, ``params_non_embedding``,
  ``flops_per_example``, ``guard_rescued`` (True / False / NA) and ``guard_source`` (``tag``, ``counters``
  for runs that predate the tag, or empty), ``status`` (finished / running / failed), the data counts
  ``train_structures``, ``train_tokens``, ``val_structures``, ``val_tokens``, ``val_sigmas`` (JSON list of
  σ nodes, Å), ``axis``), then ``step``,
  ``examples`` and ``flops`` (cumulative training FLOPs, forward + backward, interpolated in step between the
  steps that logged them, so validation rows carry them), then one column per logged metric under its own key
  (``train/loss``, ``val/lddt``, ...; NaN where not logged).
- :func:`run_table` — one row per run with the identity columns and every param and tag.

``analysis`` never imports ``harness``: the recorded names arrive as :class:`RecordNames`, whose defaults
equal ``harness.tracking.names`` (``tests/analysis/test_collect.py`` asserts they never drift).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


class ReportInputError(ValueError):
    """Input to ``analysis`` (a run folder, a CSV, a tracking URI, a sweep name) is missing or malformed.

    The message names the file, key or record at fault and what was expected.
    """


@dataclass(frozen=True)
class RecordNames:
    """Keys under which runs are recorded. Defaults mirror ``harness.tracking.names``."""

    tag_sweep: str = "sweep"
    tag_run_key: str = "run_key"
    tag_preset: str = "preset"
    tag_attention: str = "attention"
    tag_kind: str = "kind"
    tag_status: str = "harness_status"
    tag_guard_rescued: str = "guard_rescued"
    tag_profile: str = "profile"
    tag_study_config: str = "study_config"
    tag_study_budgets: str = "study_budgets"
    tag_study_role: str = "study_role"
    tag_study_lr: str = "study_lr"
    device: str = "device"
    time_basis: str = "time_basis"
    device_s: str = "time/device_s"
    params_total: str = "params_total"
    params_non_embedding: str = "params_non_embedding"
    flops_per_example: str = "flops_per_example"
    flops_cumulative: str = "flops/cumulative"
    examples_seen: str = "data/examples_seen"
    skipped_steps: str = "guard/skipped_steps"
    rollbacks: str = "guard/rollbacks"
    # The validation estimator (harness/train/validation.py) and what the run saw.
    val_loss: str = "val/loss"
    val_loss_diffusion: str = "val/loss_diffusion"
    val_loss_diffusion_at_sigma: str = "val/loss_diffusion_sigma_{i:02d}"
    val_distogram_ce: str = "val/distogram_ce"
    val_smooth_lddt: str = "val/smooth_lddt"
    val_lddt: str = "val/lddt"
    val_contact_precision: str = "val/contact_precision"
    val_contact_precision_noise: str = "val/contact_precision_noise"
    val_loss_noise: str = "val/loss_noise"
    val_lddt_noise: str = "val/lddt_noise"
    val_loss_diffusion_noise: str = "val/loss_diffusion_noise"
    val_smooth_lddt_noise: str = "val/smooth_lddt_noise"
    baseline_lddt_geometric: str = "baseline/lddt_geometric"
    train_structures: str = "data_train_structures"
    train_tokens: str = "data_train_tokens"
    val_structures: str = "data_val_structures"
    val_tokens: str = "data_val_tokens"
    val_sigmas: str = "val_sigma_grid"
    run_config_file: str = "config.yaml"
    run_state_file: str = "state.json"
    run_metrics_file: str = "metrics.csv"
    run_structure_metrics_file: str = "val_structures.csv"
    structure_key_separator: str = "@"
    # Dotted keys of the flattened resolved config.
    width: str = "model.c_z"
    depth_pairformer: str = "model.n_pairformer_blocks"
    depth_structure: str = "model.n_diffusion_blocks"
    attention: str = "model.triangle_attention"
    preset: str = "model.preset"
    seed: str = "seed"
    name: str = "name"
    lr: str = "train.lr"
    warmup: str = "train.warmup_steps"
    max_steps: str = "train.max_steps"
    schedule: str = "train.schedule.kind"


NAMES = RecordNames()

IDENTITY_COLUMNS = (
    "run", "name", "config", "seed", "run_id", "sweep", "preset", "attention", "width", "depth_pairformer",
    "depth_structure", "lr", "warmup", "params", "params_non_embedding", "flops_per_example", "guard_rescued",
    "guard_source", "status", "train_structures", "train_tokens", "val_structures", "val_tokens", "val_sigmas", "axis",
    "profile", "study_role", "study_budgets", "study_lr", "max_steps", "schedule", "device",
)
STEP_COLUMNS = ("step", "examples", "flops", "device_s")
AXIS_WIDTH, AXIS_PAIRFORMER, AXIS_STRUCTURE = "width", "deeper Pairformer", "deeper structure module"


@dataclass
class RunRecord:
    """One training run as recorded: params (flattened config + counts), tags and its metric history.

    ``metrics`` is long format with columns ``step`` (int), ``key`` (str), ``value`` (float).
    """

    name: str
    run_id: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["step", "key", "value"]))
    source: str = ""


# ---------------------------------------------------------------------------------------------------- MLflow


def read_mlflow_runs(
    tracking_uri: str,
    sweep: str | None = None,
    experiment: str | None = None,
    names: RecordNames = NAMES,
) -> list[RunRecord]:
    """Runs of ``sweep`` (tag ``sweep``; all runs when None) in ``experiment`` (all experiments when None).

    ``tracking_uri``: ``sqlite:///abs/path/mlflow.db``, ``http://host:port`` or a ``file:`` store.
    Report runs (tag ``kind=report``) and tuning studies are skipped. Raises ReportInputError when the store
    cannot be opened, the experiment does not exist or nothing matches.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    _check_sqlite_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        if experiment is not None:
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                raise ReportInputError(f"{tracking_uri}: no MLflow experiment named {experiment!r}")
            experiment_ids = [exp.experiment_id]
        else:
            experiment_ids = [e.experiment_id for e in client.search_experiments()]
        filters = [] if sweep is None else [f"tags.`{names.tag_sweep}` = '{_quote(sweep)}'"]
        runs = _search_all(client, experiment_ids, " and ".join(filters))
        records = []
        for run in runs:
            kind = run.data.tags.get(names.tag_kind, "train")
            if kind not in ("train", "tune_trial"):
                continue
            history = [
                (m.step, key, m.value, m.timestamp)
                for key in run.data.metrics
                for m in client.get_metric_history(run.info.run_id, key)
            ]
            # A resumed run may log a step twice; order by time so "last" means the latest write.
            metrics = (pd.DataFrame(history, columns=["step", "key", "value", "timestamp"])
                       .sort_values(["key", "step", "timestamp"], kind="stable")
                       .drop(columns="timestamp").reset_index(drop=True))
            records.append(RunRecord(
                name=run.data.tags.get(names.tag_run_key) or run.info.run_name or run.info.run_id,
                run_id=run.info.run_id,
                params=dict(run.data.params),
                # MLflow's own run status stands in for the harness tag where a trainer did not set it.
                tags={names.tag_status: str(run.info.status).lower(), **run.data.tags},
                metrics=metrics,
                source=f"{tracking_uri}#{run.info.run_id}",
            ))
    except MlflowException as exc:
        raise ReportInputError(f"{tracking_uri}: cannot read runs from MLflow ({exc.message})") from None
    if not records:
        where = f"sweep {sweep!r}" if sweep else "any sweep"
        raise ReportInputError(f"{tracking_uri}: no training runs of {where} found"
                               + (f" in experiment {experiment!r}" if experiment else ""))
    return records


def _search_all(client: Any, experiment_ids: list[str], filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=1000,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _check_sqlite_uri(uri: str) -> None:
    # MLflow would silently create an empty database at a mistyped path.
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            raise ReportInputError(f"{uri}: MLflow database file {path} does not exist")


# ---------------------------------------------------------------------------------------------- run folders


def read_run_folders(runs_dir: str | Path, sweep: str | None = None,
                     names: RecordNames = NAMES) -> list[RunRecord]:
    """Runs recorded in folders ``<runs_dir>/<sweep>/<run_key>/`` (or ``<runs_dir>/<name>-<hash>/``).

    A run folder holds ``metrics.csv`` (long format: step, key, value), and optionally ``config.yaml`` (the
    resolved run config, flattened into dotted params) and ``state.json`` (status; its ``params`` and ``tags``
    mappings and any top-level ``params_total`` / ``params_non_embedding`` / ``flops_per_example``).
    ``runs_dir`` may also be a single sweep folder. Raises ReportInputError naming the file at fault.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise ReportInputError(f"{root}: runs folder does not exist")
    narrowed = sweep is not None and (root / sweep).is_dir()
    if narrowed:
        root = root / sweep
    # <root>/<run>/ belongs to the sweep we narrowed to; <root>/<sweep>/<run>/ to its parent folder.
    folders = [(p.parent, sweep if narrowed else None) for p in root.glob(f"*/{names.run_metrics_file}")]
    folders += [(p.parent, p.parent.parent.name) for p in root.glob(f"*/*/{names.run_metrics_file}")]
    records = [_read_run_folder(folder, hint, names) for folder, hint in sorted(folders)]
    if sweep is not None:
        records = [r for r in records if r.tags.get(names.tag_sweep) == sweep]
    if not records:
        raise ReportInputError(f"{root}: no run folders with {names.run_metrics_file}"
                               + (f" for sweep {sweep!r}" if sweep else ""))
    return records


def _read_run_folder(folder: Path, sweep_hint: str | None, names: RecordNames) -> RunRecord:
    metrics_path = folder / names.run_metrics_file
    try:
        metrics = pd.read_csv(metrics_path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReportInputError(f"{metrics_path}: cannot read CSV ({exc})") from None
    missing = {"step", "key", "value"} - set(metrics.columns)
    if missing:
        raise ReportInputError(
            f"{metrics_path}: missing columns {sorted(missing)}; expected step, key, value")
    metrics["value"] = pd.to_numeric(metrics["value"], errors="coerce")
    metrics["step"] = pd.to_numeric(metrics["step"], errors="coerce")
    if metrics["step"].isna().any():
        bad = int(metrics.index[metrics["step"].isna()][0]) + 2
        raise ReportInputError(f"{metrics_path}: line {bad}: step must be an integer")
    metrics["step"] = metrics["step"].astype(int)

    params: dict[str, str] = {}
    config_path = folder / names.run_config_file
    if config_path.is_file():
        try:
            config = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ReportInputError(f"{config_path}: invalid YAML ({exc})") from None
        if not isinstance(config, dict):
            raise ReportInputError(f"{config_path}: expected a mapping at the top level")
        params.update(flatten(config))

    tags: dict[str, str] = {}
    state_path = folder / names.run_state_file
    state: dict[str, Any] = {}
    if state_path.is_file():
        try:
            state = json.loads(state_path.read_text())
        except json.JSONDecodeError as exc:
            raise ReportInputError(f"{state_path}: invalid JSON ({exc})") from None
        if not isinstance(state, dict):
            raise ReportInputError(f"{state_path}: expected a JSON object")
        params.update({k: str(v) for k, v in (state.get("params") or {}).items()})
        tags.update({k: str(v) for k, v in (state.get("tags") or {}).items()})
        for key in (names.params_total, names.params_non_embedding, names.flops_per_example):
            if key in state:
                params[key] = str(state[key])
        if "status" in state:
            tags.setdefault(names.tag_status, str(state["status"]))
        if isinstance(state.get("guard_rescued"), bool):  # the trainer's record (MLflow gets it as a tag)
            tags.setdefault(names.tag_guard_rescued, "true" if state["guard_rescued"] else "false")

    tags.setdefault(names.tag_run_key, folder.name)
    if sweep_hint is not None:
        tags.setdefault(names.tag_sweep, sweep_hint)
    if names.preset in params:
        tags.setdefault(names.tag_preset, params[names.preset])
    if names.attention in params:
        tags.setdefault(names.tag_attention, params[names.attention])
    return RunRecord(name=tags[names.tag_run_key], run_id=str(state.get("mlflow_run_id", "")),
                     params=params, tags=tags, metrics=metrics, source=str(folder))


def read_structure_metrics(records: Iterable[RunRecord], names: RecordNames = NAMES) -> pd.DataFrame:
    """Every validation's values per structure of the runs recorded in folders (``val_structures.csv``): one row
    per (run, step, structure, metric) with its ``value``. Runs without the file add nothing (they predate it,
    or were read from MLflow only); an empty frame when none has it."""
    frames = []
    for r in records:
        path = Path(r.source) / names.run_structure_metrics_file
        if not r.source or not path.is_file():
            continue
        try:
            raw = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ReportInputError(f"{path}: cannot read CSV ({exc})") from None
        if raw.empty:
            continue
        if {"step", "key", "value"} - set(raw.columns):
            raise ReportInputError(f"{path}: expected columns step, key, value")
        parts = raw["key"].astype(str).str.rsplit(names.structure_key_separator, n=1, expand=True)
        if parts.shape[1] != 2 or parts[1].isna().any():
            raise ReportInputError(f"{path}: keys must read <metric>{names.structure_key_separator}<structure>")
        frames.append(pd.DataFrame({"run": r.name, "step": raw["step"].astype(int), "structure": parts[1],
                                    "metric": parts[0], "value": pd.to_numeric(raw["value"], errors="coerce")}))
    if not frames:
        return pd.DataFrame(columns=["run", "step", "structure", "metric", "value"])
    return pd.concat(frames, ignore_index=True).drop_duplicates(["run", "step", "structure", "metric"], keep="last")


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"c_z": 128}}`` → ``{"model.c_z": "128"}``; values as MLflow stores params (strings)."""
    out: dict[str, str] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = "None" if value is None else str(value)
    return out


# ------------------------------------------------------------------------------------------------ tables


def collect(
    tracking_uri: str | None = None,
    runs_dir: str | Path | None = None,
    sweep: str | None = None,
    experiment: str | None = None,
    names: RecordNames = NAMES,
) -> list[RunRecord]:
    """Runs from MLflow and/or run folders; a run found in both (same MLflow run id or name) is kept once."""
    if tracking_uri is None and runs_dir is None:
        raise ReportInputError("collect: give a tracking URI, a runs folder, or both")
    records: list[RunRecord] = []
    if tracking_uri is not None:
        records += read_mlflow_runs(tracking_uri, sweep=sweep, experiment=experiment, names=names)
    if runs_dir is not None:
        seen_ids = {r.run_id for r in records if r.run_id}
        seen_names = {r.name for r in records}
        records += [r for r in read_run_folders(runs_dir, sweep=sweep, names=names)
                    if r.run_id not in seen_ids and r.name not in seen_names]
    return records


def run_table(records: Iterable[RunRecord], names: RecordNames = NAMES) -> pd.DataFrame:
    """One row per run: identity columns, then every param (``param:<key>``) and tag (``tag:<key>``)."""
    rows = []
    for r in records:
        row = _identity(r, names)
        row.update({f"param:{k}": v for k, v in r.params.items()})
        row.update({f"tag:{k}": v for k, v in r.tags.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["axis"] = scaling_axis(table)
    return table


def repeated_steps(record: RunRecord) -> dict[str, int]:
    """Per metric key, how many of a run's steps were recorded more than once with different values.

    A run resumed from a checkpoint re-logs the steps between that checkpoint and the interruption; the
    trainer also logs some counters (cumulative FLOPs) once per train log and once per validation at the same
    step with the same value, which is no conflict and is not counted. :func:`tidy` keeps the last value.
    """
    m = record.metrics
    repeated = m[m.duplicated(["step", "key"], keep=False)]
    conflicting = repeated.groupby(["key", "step"])["value"].nunique(dropna=False) > 1
    counts = conflicting[conflicting].groupby(level="key").size()
    return {str(k): int(n) for k, n in counts.items()}


def repeated_step_notes(records: Iterable[RunRecord]) -> list[str]:
    """One line per run that recorded some step twice with different values: the keys and what was kept."""
    notes = []
    for r in records:
        counts = repeated_steps(r)
        if counts:
            keys = ", ".join(f"{k} ({n} steps)" for k, n in sorted(counts.items()))
            notes.append(f"run {r.name}: steps recorded twice with different values (a resumed run re-logs "
                         f"the steps after its last checkpoint): {keys}; the last value of each step is kept")
    return notes


def tidy(records: Iterable[RunRecord], names: RecordNames = NAMES) -> pd.DataFrame:
    """One row per (run, step); see the module docstring for the columns. Sorted by run, then step.

    A step recorded twice keeps its last value (see :func:`repeated_step_notes` for saying so).
    """
    frames = []
    for r in records:
        if r.metrics.empty:
            continue
        last = r.metrics.drop_duplicates(["step", "key"], keep="last")
        wide = last.pivot(index="step", columns="key", values="value")
        wide = wide.sort_index().reset_index()
        wide.columns.name = None
        for column, key in (("examples", names.examples_seen), ("flops", names.flops_cumulative),
                            ("device_s", names.device_s)):
            wide[column] = _fill_cumulative(wide["step"], wide[key]) if key in wide else np.nan
        for column, value in _identity(r, names).items():
            wide[column] = value
        frames.append(wide)
    if not frames:
        raise ReportInputError("tidy: none of the runs logged any metric")
    frame = pd.concat(frames, ignore_index=True)
    runs = frame.drop_duplicates("run")
    frame["axis"] = frame["run"].map(dict(zip(runs["run"], scaling_axis(runs), strict=True)))
    metric_columns = sorted(c for c in frame.columns if c not in IDENTITY_COLUMNS + STEP_COLUMNS)
    frame = frame[list(IDENTITY_COLUMNS + STEP_COLUMNS) + metric_columns]
    return frame.sort_values(["run", "step"], kind="stable").reset_index(drop=True)


def _fill_cumulative(steps: pd.Series, values: pd.Series) -> pd.Series:
    """A cumulative counter (FLOPs, examples) at every step: linear in step between the steps that logged it
    (a validation step between two train logs gets its share), carried forward after the last."""
    known = values.notna()
    if not known.any():
        return values
    filled = np.interp(steps.to_numpy(float), steps[known].to_numpy(float), values[known].to_numpy(float))
    return pd.Series(np.where(steps < steps[known].iloc[0], np.nan, filled), index=values.index)


def _identity(r: RunRecord, names: RecordNames) -> dict[str, Any]:
    p, t = r.params, r.tags
    name = t.get("mlflow.runName") or p.get(names.name) or r.name
    seed = _number(p.get(names.seed), r, names.seed)
    return {
        "run": r.name,
        "name": name,
        # A study's runs name their configuration; others are their name without the seed suffix.
        "config": t.get(names.tag_study_config) or configuration_of(name, seed),
        "seed": seed,
        "run_id": r.run_id,
        "sweep": t.get(names.tag_sweep, ""),
        "preset": t.get(names.tag_preset) or p.get(names.preset) or "",
        "attention": t.get(names.tag_attention) or p.get(names.attention) or "",
        "width": _number(p.get(names.width), r, names.width),
        "depth_pairformer": _number(p.get(names.depth_pairformer), r, names.depth_pairformer),
        "depth_structure": _number(p.get(names.depth_structure), r, names.depth_structure),
        "lr": _number(p.get(names.lr), r, names.lr),
        "warmup": _number(p.get(names.warmup), r, names.warmup),
        "params": _number(p.get(names.params_total), r, names.params_total),
        "params_non_embedding": _number(p.get(names.params_non_embedding), r, names.params_non_embedding),
        "flops_per_example": _number(p.get(names.flops_per_example), r, names.flops_per_example),
        "guard_rescued": guard_rescued(r, names),
        "status": t.get(names.tag_status, ""),
        "guard_source": ("tag" if names.tag_guard_rescued in r.tags else
                         "counters" if r.metrics["key"].isin([names.skipped_steps, names.rollbacks]).any() else ""),
        "train_structures": _number(p.get(names.train_structures), r, names.train_structures),
        "train_tokens": _number(p.get(names.train_tokens), r, names.train_tokens),
        "val_structures": _number(p.get(names.val_structures), r, names.val_structures),
        "val_tokens": _number(p.get(names.val_tokens), r, names.val_tokens),
        "val_sigmas": p.get(names.val_sigmas, ""),
        "profile": t.get(names.tag_profile, ""),
        "study_role": t.get(names.tag_study_role, ""),
        "study_budgets": t.get(names.tag_study_budgets, ""),
        "study_lr": t.get(names.tag_study_lr, ""),
        "max_steps": _number(p.get(names.max_steps), r, names.max_steps),
        "schedule": p.get(names.schedule) or "af3",
        "device": p.get(names.device, ""),
    }


def configuration_of(name: str, seed: float) -> str:
    """The configuration a run belongs to: its name without the sweep's seed suffix (``medium-s1`` →
    ``medium``; ``harness.sweep.expand`` appends ``-s<seed>`` when a sweep has several seeds)."""
    if not math.isnan(seed):
        suffix = f"-s{int(seed)}"
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def guard_rescued(r: RunRecord, names: RecordNames = NAMES) -> object:
    """True when the stability guard skipped a step or rolled the run back, False when it did not, ``pd.NA``
    when the run recorded neither the tag nor the guard counters.

    The tag ``guard_rescued`` is the record; runs logged before it existed fall back to the cumulative
    counters ``guard/skipped_steps`` and ``guard/rollbacks``.
    """
    tag = r.tags.get(names.tag_guard_rescued)
    if tag is not None:
        if tag.strip().lower() not in ("true", "false"):
            raise ReportInputError(f"{r.source}: tag {names.tag_guard_rescued}={tag!r}; expected 'true' or 'false'")
        return tag.strip().lower() == "true"
    counters = r.metrics[r.metrics["key"].isin([names.skipped_steps, names.rollbacks])]
    if counters.empty:
        return pd.NA
    return bool((counters["value"].fillna(0) > 0).any())


def _number(raw: str | None, record: RunRecord, key: str) -> float:
    if raw is None or raw in ("", "None"):
        return float("nan")
    try:
        return float(raw)
    except ValueError:
        raise ReportInputError(f"{record.source}: param {key}={raw!r} is not a number") from None


def scaling_axis(runs: pd.DataFrame) -> pd.Series:
    """Which axis of the width-vs-depth study each run lies on (the paper's Figure 2).

    ``deeper Pairformer`` / ``deeper structure module`` when the run has more Pairformer / diffusion
    transformer blocks than the shallowest run of the table, else ``width``. Runs: a frame with the columns
    ``depth_pairformer`` and ``depth_structure`` (one row per run).
    """
    pairformer = runs["depth_pairformer"].astype(float)
    structure = runs["depth_structure"].astype(float)
    axis = pd.Series(AXIS_WIDTH, index=runs.index, dtype=object)
    axis[structure > structure.min()] = AXIS_STRUCTURE
    axis[pairformer > pairformer.min()] = AXIS_PAIRFORMER
    return axis


def rescued(frame: pd.DataFrame) -> pd.Series:
    """Per row of a tidy or per-run frame: True where the stability guard rescued the run (False where it
    did not or it is unknown; ``guard_source`` says which)."""
    if "guard_rescued" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["guard_rescued"].map(lambda v: bool(v) if isinstance(v, bool | np.bool_) else False)


def final_values(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The last logged value of ``column`` per run, with that run's identity columns and its step/FLOPs then.

    frame: from :func:`tidy`. Returns one row per run that logged ``column`` (columns of ``frame``), sorted by
    parameters. Raises ReportInputError when no run logged it.
    """
    if column not in frame:
        raise ReportInputError(f"no run logged metric {column!r}; logged: {sorted(_metric_columns(frame))}")
    rows = frame.dropna(subset=[column]).groupby("run", sort=False).tail(1)
    if rows.empty:
        raise ReportInputError(f"metric {column!r} has no values in any run")
    return rows.sort_values(["params", "run"]).reset_index(drop=True)


def _metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in IDENTITY_COLUMNS + STEP_COLUMNS]
