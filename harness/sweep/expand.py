"""Sweep YAML → list of validated ``RunSpec``. Every run is validated as a RunConfig before anything is
submitted; all problems are reported together, each naming the sweep file and key path.

Order in which overrides apply to ``base`` (later wins): the profile's ``overrides`` (a generic shrink such as
``train.max_steps``) → the named run → grid/zip values → the profile's per-run overrides → the seed.
"""

from __future__ import annotations

import copy
import itertools
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config import RunConfig, format_validation_error, parse_config, read_yaml, set_dotted
from harness.errors import ConfigError
from harness.sweep.keys import flatten, key_problem
from harness.sweep.schema import ExecutorSettings, StudyDesign, SweepFile, SweepProfile
from harness.sweep.spec import RunSpec
from harness.sweep.study import StudyPlan


def load_sweep(path: str | Path) -> SweepFile:
    """Read and validate the sweep file's own structure (not yet the runs)."""
    return parse_config(SweepFile, read_yaml(path), str(path))


def choose_profile(sweep: SweepFile, profile: str | None, source: str) -> tuple[str | None, SweepProfile]:
    name = profile or sweep.default_profile
    if name is None:
        return None, SweepProfile()
    if name not in sweep.profiles:
        raise ConfigError(source, [f"profiles: no profile {name!r}; "
                                   f"this sweep defines {sorted(sweep.profiles)}"])
    return name, sweep.profiles[name]


def executor_settings(sweep: SweepFile, profile: SweepProfile, source: str) -> ExecutorSettings:
    try:
        return sweep.executor.merged(profile.executor)
    except ValidationError as err:
        raise ConfigError(source, [f"executor (with profile): {line}"
                                   for line in format_validation_error(err)]) from None


def _grid_points(sweep: SweepFile) -> list[dict[str, Any]]:
    axes = [[(key, v) for v in values] for key, values in sweep.grid.items()]
    zipped = [list(zip(sweep.zip, row, strict=True)) for row in zip(*sweep.zip.values(), strict=True)]
    if zipped:
        axes.append([tuple(pairs) for pairs in zipped])
    points = []
    for combo in itertools.product(*axes):
        point: dict[str, Any] = {}
        for item in combo:
            pairs = item if isinstance(item[0], tuple) else (item,)
            point.update(dict(pairs))
        points.append(point)
    return points


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "", str(value)) or "x"


def _label(run: str | None, point: dict[str, Any], seed: int, many_seeds: bool) -> str:
    parts = [run] if run else []
    parts += [f"{key.split('.')[-1]}{_slug(value)}" for key, value in point.items()]
    if many_seeds or not parts:
        parts.append(f"s{seed}")
    return "-".join(parts)


def _key_problems(sweep: SweepFile, profile_name: str | None, profile: SweepProfile) -> list[str]:
    sections: list[tuple[str, dict[str, Any]]] = [("base", flatten(RunConfig, sweep.base))]
    sections += [(f"runs.{name}", flatten(RunConfig, o)) for name, o in sweep.runs.items()]
    sections += [("grid", dict(sweep.grid)), ("zip", dict(sweep.zip))]
    if profile_name is not None:
        sections.append((f"profiles.{profile_name}.overrides", flatten(RunConfig, profile.overrides)))
        sections += [(f"profiles.{profile_name}.runs.{n}", flatten(RunConfig, o))
                     for n, o in profile.runs.items()]
    problems = []
    for where, overrides in sections:
        for key in overrides:
            problem = key_problem(RunConfig, key)
            if problem:
                problems.append(f"{where}.{key}: {problem}")
    return problems


def expand(sweep: SweepFile, profile: str | None = None, *, source: str = "<sweep>",
           extra: dict[str, Any] | None = None) -> list[RunSpec]:
    """All runs of ``sweep`` under ``profile``, validated; ConfigError listing every problem otherwise.

    ``extra``: dotted overrides applied to every run last (``harness sweep --set train.max_steps=20``).
    """
    profile_name, prof = choose_profile(sweep, profile, source)
    problems = _key_problems(sweep, profile_name, prof)
    problems += [f"--set {key}: {p}" for key in extra or {} if (p := key_problem(RunConfig, key))]
    if problems:
        raise ConfigError(source, problems)

    base = copy.deepcopy(sweep.base)
    base.setdefault("tracking", {}).setdefault("experiment", sweep.name)
    named: list[tuple[str | None, dict[str, Any]]] = list(sweep.runs.items()) or [(None, {})]
    specs: list[RunSpec] = []
    by_key: dict[str, str] = {}
    seeds = prof.seeds or sweep.seeds
    for (run, run_overrides), point, seed in itertools.product(named, _grid_points(sweep), seeds):
        label = _label(run, point, seed, len(seeds) > 1)
        raw = copy.deepcopy(base)
        layers = [flatten(RunConfig, prof.overrides), flatten(RunConfig, run_overrides), point,
                  flatten(RunConfig, prof.runs.get(run or "", {})), dict(extra or {}),
                  {"seed": seed, "name": label}]
        for layer in layers:
            for dotted, value in layer.items():
                set_dotted(raw, dotted, copy.deepcopy(value))
        try:
            config = RunConfig.model_validate(raw)
        except ValidationError as err:
            problems += [f"run {label}: {line}" for line in format_validation_error(err)]
            continue
        key = f"{label}-{config.config_hash()}"
        if config.config_hash() in by_key:
            problems.append(f"run {label}: resolves to the same config as run {by_key[config.config_hash()]}")
            continue
        by_key[config.config_hash()] = label
        run_dir = (config.runs_dir / sweep.name / key).resolve()
        specs.append(RunSpec(sweep=sweep.name, label=label, config=config, run_dir=run_dir, axes=point))
    if problems:
        raise ConfigError(source, problems)
    return specs


def study_design(sweep: SweepFile, profile: str | None, source: str) -> StudyDesign | None:
    """The study design in effect: the profile's, else the sweep's, else None (a plain grid)."""
    _, prof = choose_profile(sweep, profile, source)
    return prof.study or sweep.study


# Settings a study design derives for every run; a `--set` of one would be silently replaced.
STUDY_SETS = {
    "train.max_steps": "a study design trains each run to its budget (steps = budget / FLOPs per step); change "
                       "the profile's study.budgets or study.steps instead",
    "train.schedule": "a study design trains every run on a warmup-stable-decay schedule that ends at its budget; "
                      "change study.decay_fraction or study.decay_shape instead",
    "init_from": "a study design branches its shorter runs off the longest one itself",
}


def expand_runs(sweep: SweepFile, profile: str | None = None, *, source: str = "<sweep>",
                extra: dict[str, Any] | None = None,
                lr_source: str | None = None) -> tuple[list[RunSpec], StudyPlan | None]:
    """Every run to dispatch: the grid as :func:`expand` gives it, or, for a sweep with a study design, the
    study's runs (its lr scan first; the study proper once the scan has chosen the rates)."""
    from harness.sweep.lr_choice import choose
    from harness.sweep.study import plan_study

    specs = expand(sweep, profile, source=source, extra=extra)
    design = study_design(sweep, profile, source)
    if design is None:
        if lr_source is not None:
            raise ConfigError(source, [f"--lr-source {lr_source}: this sweep (profile {profile}) has no study "
                                       "design, so its runs use their own train.lr"])
        return specs, None
    if problems := [f"--set {key}: {STUDY_SETS[prefix]}" for key in extra or {}
                    for prefix in STUDY_SETS if key == prefix or key.startswith(prefix + ".")]:
        raise ConfigError(source, problems)
    name, _ = choose_profile(sweep, profile, source)
    plan = plan_study(specs, design, sweep=sweep.name, profile=name, source=source, lr_source=lr_source)
    if plan.runs is None:
        chosen = choose(plan.scan)
        if chosen is not None:
            plan = plan_study(specs, design, sweep=sweep.name, profile=name, source=source, lr_source=lr_source,
                              chosen=chosen)
    return plan.specs, plan


def load_and_expand(path: str | Path, profile: str | None = None,
                    extra: dict[str, Any] | None = None) -> tuple[SweepFile, list[RunSpec]]:
    sweep = load_sweep(path)
    return sweep, expand_runs(sweep, profile, source=str(path), extra=extra)[0]
