"""Check dotted override keys (``train.lr``) against the RunConfig schema before any run is built, so an
unknown axis is reported with the sweep key that introduced it."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def key_problem(root: type[BaseModel], dotted: str) -> str | None:
    """None when ``dotted`` names a field of ``root`` (through nested models), else what is wrong."""
    model: type[BaseModel] | None = root
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[:i]) or "the top level"
        if model is None:
            return f"{'.'.join(parts[:i])} is a value, not a mapping (cannot set {dotted!r})"
        field = model.model_fields.get(part)
        if field is None:
            allowed = ", ".join(sorted(model.model_fields))
            return f"unknown key {part!r} under {where} (allowed: {allowed})"
        model = _submodel(field.annotation)
    return None


def flatten(root: type[BaseModel], overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` and ``{"train.lr": 1e-3}`` both become ``{"train.lr": 1e-3}``; mappings are
    split only where the schema has a nested model, so dict-valued fields stay whole."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value and _is_model_path(root, dotted):
            flat |= flatten(root, value, prefix=f"{dotted}.")
        else:
            flat[dotted] = value
    return flat


def _is_model_path(root: type[BaseModel], dotted: str) -> bool:
    model: type[BaseModel] | None = root
    for part in dotted.split("."):
        if model is None or part not in model.model_fields:
            return False
        model = _submodel(model.model_fields[part].annotation)
    return model is not None
