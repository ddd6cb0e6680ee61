"""The search space: suggest values with Optuna and write them into a RunConfig by dotted key.

A key may end in an index into a list/tuple field: ``train.betas.1`` is Adam's beta2.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from harness.config import RunConfig
from harness.config_files import format_validation_error
from harness.sweep.keys import key_problem
from harness.tune.schema import ParamSpace, TuneFile


def _split_index(dotted: str) -> tuple[str, int | None]:
    head, _, last = dotted.rpartition(".")
    if head and last.isdigit():
        return head, int(last)
    return dotted, None


def set_param(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``dotted`` in ``raw`` (a full RunConfig dump); ``a.b.1`` sets element 1 of the sequence ``a.b``."""
    field, index = _split_index(dotted)
    *parents, leaf = field.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if index is None:
        node[leaf] = value
    else:
        seq = list(node[leaf])
        seq[index] = value
        node[leaf] = seq


def suggest(trial, space: dict[str, ParamSpace]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "float":
            params[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
        elif p.type == "int":
            params[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
        else:
            params[name] = trial.suggest_categorical(name, p.choices)
    return params


def base_dump(tune: TuneFile) -> dict[str, Any]:
    raw = copy.deepcopy(tune.base)
    raw.setdefault("tracking", {}).setdefault("experiment", tune.name)
    return RunConfig.model_validate(raw).model_dump(mode="json")


def trial_config(tune: TuneFile, params: dict[str, Any], name: str) -> RunConfig:
    raw = base_dump(tune)
    for key, value in params.items():
        set_param(raw, key, value)
    raw["name"] = name
    return RunConfig.model_validate(raw)


def check(tune: TuneFile) -> list[str]:
    """Every problem of the base config and the space, found before any trial runs: unknown keys, and the
    corners of the space (all lows / all highs / each choice) that do not validate as a RunConfig."""
    try:
        base_dump(tune)
    except ValidationError as err:
        return [f"base: {line}" for line in format_validation_error(err)]
    problems = []
    for key in tune.space:
        field, index = _split_index(key)
        problem = key_problem(RunConfig, field)
        if problem:
            problems.append(f"space.{key}: {problem}")
        elif index is not None and not isinstance(_lookup(base_dump(tune), field), list):
            problems.append(f"space.{key}: {field} is not a list, so index {index} cannot be set")
    if problems:
        return problems
    corners = [{k: (p.choices[0] if p.type == "categorical" else _typed(p, p.low)) for k, p in tune.space.items()},
               {k: (p.choices[-1] if p.type == "categorical" else _typed(p, p.high)) for k, p in tune.space.items()}]
    for corner in corners:
        try:
            trial_config(tune, corner, "check")
        except (ValidationError, IndexError) as err:
            lines = format_validation_error(err) if isinstance(err, ValidationError) else [str(err)]
            problems += [f"space (at {corner}): {line}" for line in lines]
    return problems


def _typed(p: ParamSpace, value: float) -> float | int:
    return int(value) if p.type == "int" else float(value)


def _lookup(raw: dict[str, Any], dotted: str) -> Any:
    node: Any = raw
    for key in dotted.split("."):
        node = node[key]
    return node
