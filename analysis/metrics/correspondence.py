"""Which reference atom corresponds to which model atom.

Polymer chains are paired residue by residue through a global sequence alignment (identical residues only,
scores as in DockQ v2: match 5, mismatch 0, gap open −4, extend −0.5), then atom by atom by atom name.
Ligands (non-polymer residues) are handled in :mod:`analysis.metrics.ligand`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import biotite.sequence as seq
import biotite.sequence.align as align
import biotite.structure as struc
import biotite.structure.info as info
import numpy as np

PROTEIN, DNA, RNA = "protein", "dna", "rna"
# Representative atom per residue for Cα-only lDDT and binding-site superposition.
REPRESENTATIVE_ATOMS = {PROTEIN: "CA", DNA: "C3'", RNA: "C3'"}
# DockQ v2 backbone: protein N, CA, C, O and the nucleic-acid sugar-phosphate backbone.
BACKBONE_ATOMS = frozenset(
    ["CA", "C", "N", "O", "P", "OP1", "OP2", "O2'", "O3'", "O4'", "O5'", "C1'", "C2'", "C3'", "C4'", "C5'"]
)
_ALIGN_SYMBOLS = "ACDEFGHIKLMNPQRSTVWYUX"
_ALPHABET = seq.Alphabet(list(_ALIGN_SYMBOLS))
_MATRIX = align.SubstitutionMatrix(
    _ALPHABET, _ALPHABET, np.where(np.eye(len(_ALIGN_SYMBOLS), dtype=bool), 5, 0).astype(np.int32)
)


class CorrespondenceError(ValueError):
    """Reference and model chains cannot be put into correspondence (missing chain, unrelated sequence)."""


def _one_letter(res_name: str) -> str:
    code = info.one_letter_code(res_name)
    return code if code is not None and code in _ALIGN_SYMBOLS else "X"


@dataclass(frozen=True)
class Chain:
    """One polymer chain: ``indices`` (n_atoms,) into the parent AtomArray, in file order."""

    chain_id: str
    kind: str
    atoms: struc.AtomArray
    indices: np.ndarray

    @cached_property
    def residue_starts(self) -> np.ndarray:
        return struc.get_residue_starts(self.atoms)

    @cached_property
    def residue_index(self) -> np.ndarray:
        """(n_atoms,) residue number 0..R-1 of each atom within this chain."""
        index = np.zeros(self.atoms.array_length(), dtype=np.int64)
        index[self.residue_starts[1:]] = 1
        return np.cumsum(index)

    @cached_property
    def sequence(self) -> str:
        return "".join(_one_letter(name) for name in self.atoms.res_name[self.residue_starts])

    @property
    def n_residues(self) -> int:
        return len(self.residue_starts)


def _polymer_mask(atoms: struc.AtomArray) -> np.ndarray:
    return struc.filter_amino_acids(atoms) | struc.filter_nucleotides(atoms)


def polymer_chains(atoms: struc.AtomArray) -> dict[str, Chain]:
    """All polymer chains of ``atoms`` (amino-acid or nucleotide residues, modified ones too), in order."""
    polymer = _polymer_mask(atoms)
    chains: dict[str, Chain] = {}
    for chain_id in dict.fromkeys(atoms.chain_id[polymer]):
        indices = np.flatnonzero(polymer & (atoms.chain_id == chain_id))
        sub = atoms[indices]
        n_amino = np.count_nonzero(struc.filter_amino_acids(sub))
        if n_amino * 2 >= len(indices):
            kind = PROTEIN
        else:
            kind = RNA if np.any(sub.atom_name == "O2'") else DNA
        chains[str(chain_id)] = Chain(str(chain_id), kind, sub, indices)
    return chains


def ligand_mask(atoms: struc.AtomArray) -> np.ndarray:
    """(A,) True for atoms of non-polymer residues (ligands, ions), water already excluded by the reader."""
    return ~_polymer_mask(atoms)


def align_residues(ref: Chain, model: Chain) -> tuple[np.ndarray, np.ndarray]:
    """Paired residue numbers (ref_res, model_res), each (P,): identical residues of the optimal alignment."""
    if ref.sequence == model.sequence:
        index = np.arange(ref.n_residues)
        return index, index.copy()
    ref_seq = seq.GeneralSequence(_ALPHABET, list(ref.sequence))
    model_seq = seq.GeneralSequence(_ALPHABET, list(model.sequence))
    alignment = align.align_optimal(ref_seq, model_seq, _MATRIX, gap_penalty=(-4, -0.5), max_number=1)[0]
    trace = alignment.trace
    both = (trace[:, 0] >= 0) & (trace[:, 1] >= 0)
    trace = trace[both]
    same = np.array([ref.sequence[i] == model.sequence[j] for i, j in trace], dtype=bool)
    trace = trace[same]
    return trace[:, 0].astype(np.int64), trace[:, 1].astype(np.int64)


def sequence_identity(ref: Chain, model: Chain) -> float:
    """Identical aligned residues over the shorter chain's length (0..1); 0 between different polymer kinds.

    Normalising by the shorter chain keeps a model with missing residues (or a reference with unresolved
    ones) at identity 1 against its own entity.
    """
    if ref.kind != model.kind:
        return 0.0
    ref_res, _ = align_residues(ref, model)
    return len(ref_res) / max(min(ref.n_residues, model.n_residues), 1)


def pair_atoms(ref: Chain, model: Chain) -> np.ndarray:
    """For each reference atom of the chain, the index of the same atom in ``model.atoms`` (-1 if missing).

    Returns (n_ref_atoms,) int64 indices into ``model.atoms``.
    """
    ref_res, model_res = align_residues(ref, model)
    res_to_model = np.full(ref.n_residues, -1, dtype=np.int64)
    res_to_model[ref_res] = model_res
    lookup = {
        (int(r), str(name)): i
        for i, (r, name) in enumerate(zip(model.residue_index, model.atoms.atom_name, strict=True))
    }
    mapped_res = res_to_model[ref.residue_index]
    return np.array(
        [lookup.get((int(r), str(name)), -1) for r, name in zip(mapped_res, ref.atoms.atom_name, strict=True)],
        dtype=np.int64,
    )


@dataclass(frozen=True)
class AtomPairing:
    """Reference atoms of the mapped chains and their model counterparts.

    ``ref_index``: (M,) indices into the reference AtomArray; ``model_index``: (M,) indices into the model
    AtomArray, -1 where the model lacks the atom.
    """

    ref_index: np.ndarray
    model_index: np.ndarray

    def model_coords(self, model: struc.AtomArray) -> np.ndarray:
        """(M, 3) model coordinates in reference atom order, NaN where the model lacks the atom."""
        coords = np.full((len(self.model_index), 3), np.nan, dtype=np.float64)
        present = self.model_index >= 0
        coords[present] = model.coord[self.model_index[present]]
        return coords


def pair_chains(ref_chains: dict[str, Chain], model_chains: dict[str, Chain], chain_map: dict[str, str]) -> AtomPairing:
    """Concatenate :func:`pair_atoms` over ``chain_map`` (reference chain id → model chain id).

    A reference chain mapped to no model chain (absent from ``chain_map``) contributes its atoms as missing.
    """
    ref_parts, model_parts = [], []
    for ref_id, ref_chain in ref_chains.items():
        ref_parts.append(ref_chain.indices)
        model_id = chain_map.get(ref_id)
        if model_id is None:
            model_parts.append(np.full(len(ref_chain.indices), -1, dtype=np.int64))
            continue
        model_chain = model_chains[model_id]
        local = pair_atoms(ref_chain, model_chain)
        model_parts.append(np.where(local >= 0, model_chain.indices[np.maximum(local, 0)], -1))
    if not ref_parts:
        return AtomPairing(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return AtomPairing(np.concatenate(ref_parts), np.concatenate(model_parts))
