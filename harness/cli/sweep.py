"""`harness sweep`. (placeholder: issue #7)"""

from harness.cli._common import not_available


def command() -> None:
    """Expand a sweep YAML into runs and dispatch them (local or SLURM), resuming unfinished runs."""
    not_available("sweep", 7)
