"""Errors a user can cause. Each names the file, key or record at fault and what was expected.

The CLI prints them as one line and exits non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error caused by user input or environment, printed without a traceback."""

    exit_code = 2


class ConfigError(HarnessError):
    """A configuration file is missing, unreadable or invalid. ``problems`` holds one line per fault."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"{source}: {p}" for p in problems)
        super().__init__(lines)


class NotAvailableError(HarnessError):
    """A command whose implementation has not landed yet."""

    exit_code = 3
