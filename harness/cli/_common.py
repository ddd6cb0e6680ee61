"""Helpers shared by the CLI command modules."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def not_available(command: str, issue: int) -> None:
    """Exit non-zero with one line: the command exists in the product but is not built yet."""
    from harness.errors import NotAvailableError

    raise NotAvailableError(f"`harness {command}` is not available yet (tracked in issue #{issue}).")
