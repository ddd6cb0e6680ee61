"""`harness train`. (placeholder: issue #6)"""

from harness.cli._common import not_available


def command() -> None:
    """Train one SeedFold configuration from a run YAML, resuming from its last checkpoint."""
    not_available("train", 6)
