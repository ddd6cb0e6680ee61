"""`harness report`. (placeholder: issue #9)"""

from harness.cli._common import not_available


def command() -> None:
    """Turn a sweep's recorded runs into scaling plots, power-law fits and tables."""
    not_available("report", 9)
