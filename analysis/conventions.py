"""Named scoring conventions of ``harness eval``: which OpenStructure behaviour the ligand metrics follow.

FoldBench's published outputs were computed with OpenStructure 2.8's ``compare-ligand-structures`` without
``--lddt-pli-amc`` (its ``evaluation/eval_by_ost.py`` and environment; FoldBench issue #15), so their lDDT-PLI
counts reference contacts only. Later OpenStructure releases turn that flag on by default: lDDT-PLI then also
penalises contacts the model forms and the reference lacks. Against FoldBench's own reference outputs (4 targets
x 5 samples) the ``foldbench`` convention agrees on 20 of 20 samples (lDDT-PLI to 0.0000); the other on 16 of 20
(lDDT-PLI ~0.011 low on every sample of 7fwf).
"""

from __future__ import annotations

from dataclasses import dataclass

FOLDBENCH, OST_LATEST = "foldbench", "ost-latest"


@dataclass(frozen=True)
class Convention:
    """``add_mdl_contacts``: lDDT-PLI also counts model-only contacts (``analysis.metrics.ligand``)."""

    name: str
    add_mdl_contacts: bool
    description: str


CONVENTIONS = {
    FOLDBENCH: Convention(FOLDBENCH, False, "FoldBench's: OpenStructure 2.8 compare-ligand-structures without "
                          "--lddt-pli-amc (lDDT-PLI over reference contacts only)"),
    OST_LATEST: Convention(OST_LATEST, True, "newer OpenStructure's default: lDDT-PLI also penalises "
                           "model-only contacts (--lddt-pli-amc)"),
}
DEFAULT_CONVENTION = FOLDBENCH


def convention(name: str) -> Convention:
    """The convention called ``name``; ValueError naming the known ones otherwise."""
    if name not in CONVENTIONS:
        raise ValueError(f"convention {name!r}: expected one of {', '.join(CONVENTIONS)}")
    return CONVENTIONS[name]


def convention_for_model_contacts(add_mdl_contacts: bool) -> Convention:
    """The convention that has ``add_mdl_contacts`` (the two differ in nothing else)."""
    return next(c for c in CONVENTIONS.values() if c.add_mdl_contacts == add_mdl_contacts)
