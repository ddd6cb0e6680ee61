"""`harness predict`. (placeholder: issue #8)"""

from harness.cli._common import not_available


def command() -> None:
    """Sample structures from a checkpoint; write mmCIF (pLDDT in B-factor) and confidences JSON per sample."""
    not_available("predict", 8)
