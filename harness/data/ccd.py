"""Reference conformers from the Chemical Component Dictionary (the copy biotite ships).

One :class:`Component` per CCD code, heavy atoms only, cached for the life of the process so tokenisation
is a dictionary look-up per residue.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import biotite.structure.info as info
import gemmi
import numpy as np

from harness.data.errors import UnknownCCDError


@dataclass(frozen=True)
class Component:
    """Heavy atoms of one chemical component.

    Attributes:
        code: CCD code, e.g. ``"ATP"``.
        atom_names: (n,) str, CCD atom names in CCD order.
        elements: (n,) int64 atomic numbers (0 = unknown).
        charges: (n,) float32 formal charges.
        ideal_pos: (n, 3) float32 ideal coordinates centred on their mean (Å); zeros where the CCD has none.
        bonds: (m, 2) int64 atom index pairs (i < j) of covalent bonds between heavy atoms.
        parent: CCD code of the standard parent residue (``"SER"`` for ``"SEP"``), or ``""``.
        link_type: CCD ``chem_comp.type`` upper-cased, e.g. ``"L-PEPTIDE LINKING"``, ``"NON-POLYMER"``.
    """

    code: str
    atom_names: np.ndarray
    elements: np.ndarray
    charges: np.ndarray
    ideal_pos: np.ndarray
    bonds: np.ndarray
    parent: str
    link_type: str


def _chem_comp_field(code: str, field: str) -> str:
    try:
        column = info.get_from_ccd("chem_comp", code, field)
    except KeyError:
        return ""
    if column is None:
        return ""
    values = column.as_array(str)
    mask = column.mask.array if column.mask is not None else None
    if len(values) == 0 or (mask is not None and mask[0] != 0):
        return ""
    return str(values[0]).strip().upper()


def component(code: str, source: str = "<ccd>") -> Component:
    """The heavy-atom reference conformer of ``code``; UnknownCCDError naming ``source`` if absent."""
    comp = _component(code)
    if comp is None:
        raise UnknownCCDError(source, f"residue code {code!r} is not in the Chemical Component Dictionary")
    return comp


@cache
def _component(code: str) -> Component | None:
    """Cached by code alone (not by file), so the cache holds at most one entry per CCD code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = info.residue(code, allow_missing_coord=True)
    except KeyError:
        return None
    heavy = np.flatnonzero(~np.isin(atoms.element, ("H", "D")))
    atoms = atoms[heavy]
    pos = np.nan_to_num(atoms.coord.astype(np.float32), nan=0.0)
    if len(pos):
        pos = pos - pos.mean(axis=0, keepdims=True)
    bonds = (
        atoms.bonds.as_array()[:, :2].astype(np.int64) if atoms.bonds is not None else np.zeros((0, 2), int)
    )
    bonds = np.sort(bonds, axis=1)
    elements = np.array([gemmi.Element(str(e)).atomic_number for e in atoms.element], dtype=np.int64)
    return Component(
        code=code,
        atom_names=np.asarray(atoms.atom_name, dtype=str),
        elements=elements,
        charges=np.asarray(atoms.charge, dtype=np.float32),
        ideal_pos=pos,
        bonds=bonds.reshape(-1, 2),
        parent=_chem_comp_field(code, "mon_nstd_parent_comp_id").split(",")[0],
        link_type=_chem_comp_field(code, "type"),
    )
