"""`harness tune`. (placeholder: issue #7)"""

from harness.cli._common import not_available


def command() -> None:
    """Run an Optuna study over a search space declared in YAML, trials tracked in MLflow."""
    not_available("tune", 7)
