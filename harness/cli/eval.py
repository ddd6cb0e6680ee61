"""`harness eval`: FoldBench-style evaluation of predictions against references. (placeholder: issue #8)

Convention: single commands expose a function named ``command``; ``harness/cli/__init__.py`` registers it.
"""

from harness.cli._common import not_available


def command() -> None:
    """Score predictions against reference structures (lDDT, DockQ, ligand RMSD) into FoldBench-style tables."""
    not_available("eval", 8)
