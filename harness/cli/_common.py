"""Helpers shared by the CLI command modules."""

from __future__ import annotations

from typing import Any

import yaml
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def not_available(command: str, issue: int) -> None:
    """Exit non-zero with one line: the command exists in the product but is not built yet."""
    from harness.errors import NotAvailableError

    raise NotAvailableError(f"`harness {command}` is not available yet (tracked in issue #{issue}).")


def parse_sets(values: list[str] | None) -> dict[str, Any]:
    """``--set`` options: ``["train.lr=1e-3"]`` -> ``{"train.lr": 0.001}`` (values parsed as YAML scalars)."""
    from harness.errors import ConfigError

    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", [f"{item!r}: expected KEY=VALUE, e.g. train.lr=1e-3"])
        out[key.strip()] = yaml.safe_load(value)
    return out
