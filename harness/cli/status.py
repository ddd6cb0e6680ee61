"""`harness status`. (placeholder: issue #7)"""

from harness.cli._common import not_available


def command() -> None:
    """Show each run of a sweep: state, step, last metrics, SLURM job id and log path."""
    not_available("status", 7)
