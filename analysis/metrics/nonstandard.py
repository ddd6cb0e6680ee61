"""Non-standard amino acids mapped to their parent residue, as OpenStructure 2.8's scorer does before scoring.

OpenStructure (``Scorer``, via ``MapNonStandardResidues``) replaces every modified amino acid of a polymer chain
by its parent standard residue before computing lDDT, DockQ or lDDT-PLI. FoldBench inherits this, so it is the
default here (:data:`PARENT`); :data:`KEEP` scores the residues with their own names and atoms.

Rules, per non-standard residue of an amino-acid chain whose parent (CCD ``mon_nstd_parent_comp_id``, read
through :mod:`biotite.structure.info`) is one of the 20 standard amino acids:

- MSE (selenomethionine) → MET: every atom kept, SE renamed SD (element S).
- any other residue (e.g. AIB → ALA, SEP → SER): only the atoms whose names the parent also has are kept
  (N, CA, C, O and the shared side-chain atoms; AIB's CB1/CB2 are dropped) and the residue is renamed.
- A mapped residue that then lacks CB gets an idealised CB built from its backbone (not for GLY).

Residues without a standard parent, non-amino-acid residues and nucleotides are left as they are (OST maps
amino acids only). The idealised CB uses ideal tetrahedral geometry from N, CA, C (see :func:`ideal_cb`);
OpenStructure's own construction can differ from it by a few hundredths of an Å.
"""

from __future__ import annotations

from functools import lru_cache

import biotite.structure as struc
import biotite.structure.info as info
import numpy as np

from models.features import RESTYPES

PARENT, KEEP = "parent", "keep"
NONSTANDARD_MODES = (PARENT, KEEP)
STANDARD_AMINO_ACIDS = frozenset(RESTYPES[:20])


@lru_cache(maxsize=4096)
def parent_residue(res_name: str) -> str | None:
    """The standard amino acid ``res_name`` derives from (CCD ``mon_nstd_parent_comp_id``), else None."""
    if res_name in STANDARD_AMINO_ACIDS:
        return None
    ccd = info.get_ccd()["chem_comp"]
    ids = ccd["id"].as_array()
    hit = np.flatnonzero(ids == res_name)
    if len(hit) == 0:
        return None
    parent = str(ccd["mon_nstd_parent_comp_id"].as_array()[hit[0]]).strip().upper()
    # Some entries list several parents ("ALA,GLY"); OST takes the residue's one-letter code, i.e. the first.
    parent = parent.split(",")[0].strip()
    return parent if parent in STANDARD_AMINO_ACIDS else None


@lru_cache(maxsize=64)
def _parent_atom_names(parent: str) -> frozenset[str]:
    residue = info.residue(parent)
    return frozenset(str(n) for n in residue.atom_name[residue.element != "H"])


def ideal_cb(n: np.ndarray, ca: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(..., 3) idealised Cβ position in Å from backbone N, CA, C (..., 3): L-chirality, CA–CB 1.52 Å.

    Ideal tetrahedral geometry expressed in the frame of b = CA − N, c = C − CA, a = b × c.
    """
    b, cc = ca - n, c - ca
    a = np.cross(b, cc)
    return -0.58273431 * a + 0.56802827 * b - 0.54067466 * cc + ca


def map_to_parent(atoms: struc.AtomArray) -> tuple[struc.AtomArray, dict[str, int]]:
    """``atoms`` with non-standard amino acids replaced by their parent (module docstring's rules).

    Returns the new AtomArray (bonds dropped for the mapped residues' removed atoms, kept otherwise) and the
    count of mapped residues per original residue name, e.g. ``{"MSE": 4}``.
    """
    amino = struc.filter_amino_acids(atoms)
    candidates = np.unique(atoms.res_name[amino])
    parents = {str(r): parent_residue(str(r)) for r in candidates}
    parents = {r: p for r, p in parents.items() if p is not None}
    if not parents:
        return atoms, {}
    atoms = atoms.copy()
    keep = np.ones(atoms.array_length(), dtype=bool)
    counts: dict[str, int] = {}
    new_cb: list[tuple[int, np.ndarray]] = []
    starts = struc.get_residue_starts(atoms, add_exclusive_stop=True)
    for start, stop in zip(starts[:-1], starts[1:], strict=True):
        name = str(atoms.res_name[start])
        parent = parents.get(name)
        if parent is None or not amino[start]:
            continue
        counts[name] = counts.get(name, 0) + 1
        span = np.arange(start, stop)
        atom_names = atoms.atom_name[span]
        if name == "MSE":
            se = span[atom_names == "SE"]
            atoms.atom_name[se], atoms.element[se] = "SD", "S"
        else:
            allowed = _parent_atom_names(parent)
            keep[span] = np.isin(atom_names, list(allowed))
        atoms.res_name[span] = parent
        atoms.hetero[span] = False
        names = {str(n): i for n, i in zip(atoms.atom_name[span], span, strict=True) if keep[i]}
        if parent != "GLY" and "CB" not in names and all(k in names for k in ("N", "CA", "C")):
            coord = ideal_cb(*(atoms.coord[names[k]].astype(np.float64) for k in ("N", "CA", "C")))
            new_cb.append((names["CA"], coord))
    mapped = atoms[keep]
    if new_cb:
        # Append the CBs, then move each right after its CA; indexing with an order array keeps every bond.
        shift = np.cumsum(~keep)
        ca_new = np.array([ca - int(shift[ca]) for ca, _ in new_cb])
        cbs = mapped[ca_new]
        cbs.atom_name[:] = "CB"
        cbs.element[:] = "C"
        cbs.coord = np.stack([coord for _, coord in new_cb]).astype(np.float32)
        if cbs.bonds is not None:
            cbs.bonds = struc.BondList(len(ca_new))
        n_old = mapped.array_length()
        position = np.concatenate([np.arange(n_old, dtype=np.float64), ca_new + 0.5])
        mapped = struc.concatenate([mapped, cbs])[np.argsort(position, kind="stable")]
    return mapped, counts


def apply_nonstandard(atoms: struc.AtomArray, mode: str) -> struc.AtomArray:
    """:func:`map_to_parent` for ``mode == "parent"``, ``atoms`` unchanged for ``"keep"``."""
    if mode == KEEP:
        return atoms
    if mode != PARENT:
        raise ValueError(f"non-standard residue mode {mode!r}: expected one of {', '.join(NONSTANDARD_MODES)}")
    return map_to_parent(atoms)[0]
