"""Cached arrays + kept token indices -> one example of ``models.features.FEATURES`` as torch tensors.

Atoms of the kept tokens are gathered in token order, so ``token_center_atom``/``token_disto_atom``/
``atom_to_token`` are re-indexed into the cropped example's own atom list.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from harness.data.constants import DNA, LIGAND, PROTEIN, RNA


def _atom_indices(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate ranges [start, start + count) without a Python loop."""
    total = int(counts.sum())
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return offsets + np.arange(total)


REF_TRANSLATION_STD = 1.0  # Å per axis, the random shift of each reference conformer


def chain_mol_types(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Molecule type of each token's chain (N,): a modified residue's atoms (tokenised per atom, ``mol_type``
    LIGAND) take their polymer chain's type, so they are not weighted as ligand (AF3 SI Table 5 flags)."""
    mol, asym = arrays["mol_type"], arrays["asym_id"]
    chain_type = np.full(int(asym.max()) + 1, LIGAND, dtype=mol.dtype)
    polymer = mol != LIGAND
    chain_type[asym[polymer]] = mol[polymer]
    return chain_type[asym]


def augment_conformers(ref_pos: np.ndarray, space_uid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """AF3 (SI Table 5, ref_pos): every reference conformer (atoms sharing ``ref_space_uid``) gets its own
    uniformly random rotation about its centre and a N(0, REF_TRANSLATION_STD² Å²) translation, drawn from
    ``rng`` (the example's generator, so a seed reproduces it). ref_pos (A, 3) Å -> (A, 3) Å."""
    if len(ref_pos) == 0:
        return ref_pos
    groups, inverse = np.unique(space_uid, return_inverse=True)
    rot = Rotation.random(len(groups), random_state=rng).as_matrix()  # (G, 3, 3)
    shift = rng.normal(0.0, REF_TRANSLATION_STD, size=(len(groups), 3))
    centre = np.zeros((len(groups), 3))
    np.add.at(centre, inverse, ref_pos)
    centre /= np.bincount(inverse, minlength=len(groups))[:, None]
    local = ref_pos - centre[inverse]
    moved = np.einsum("aij,aj->ai", rot[inverse], local) + centre[inverse] + shift[inverse]
    return moved.astype(np.float32)


def featurize(
    arrays: dict[str, np.ndarray],
    tokens: np.ndarray,
    max_msa_rows: int,
    rng: np.random.Generator,
    *,
    augment_ref: bool = True,
) -> dict[str, torch.Tensor]:
    """Build FEATURES for the tokens ``tokens`` (sorted indices) of one cached example.

    MSA rows: the query plus up to ``max_msa_rows - 1`` rows sampled without replacement; ``profile`` and
    ``deletion_mean`` come from the full cached MSA (AF3 SI §2.3). Reference conformers are randomly rotated and
    translated (``augment_ref``, AF3) with draws from ``rng`` after the MSA's.
    """
    n_full = len(arrays["restype"])
    n = len(tokens)
    counts = arrays["atom_count"][tokens]
    atoms = _atom_indices(arrays["atom_start"][tokens], counts)
    atom_map = np.full(len(arrays["atom_to_token"]), -1, dtype=np.int64)
    atom_map[atoms] = np.arange(len(atoms))
    token_map = np.full(n_full, -1, dtype=np.int64)
    token_map[tokens] = np.arange(n)

    bonds = token_map[arrays["token_bonds"].astype(np.int64)].reshape(-1, 2)
    bonds = bonds[(bonds >= 0).all(axis=1)]
    token_bonds = torch.zeros((n, n), dtype=torch.bool)
    if len(bonds):
        b = torch.from_numpy(bonds)
        token_bonds[b[:, 0], b[:, 1]] = True
        token_bonds[b[:, 1], b[:, 0]] = True

    msa_all = arrays["msa"]
    depth = msa_all.shape[0]
    if depth > max_msa_rows:
        rows = np.concatenate([[0], 1 + np.sort(rng.choice(depth - 1, max_msa_rows - 1, replace=False))])
    else:
        rows = np.arange(depth)
    msa = msa_all[rows][:, tokens]
    deletions = arrays["deletions"][rows][:, tokens].astype(np.float32)
    mol = chain_mol_types(arrays)[tokens]
    ref_pos = arrays["ref_pos"][atoms]
    if augment_ref:
        ref_pos = augment_conformers(ref_pos, arrays["ref_space_uid"][atoms], rng)

    def t(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)

    return {
        "token_mask": torch.ones(n, dtype=torch.bool),
        "residue_index": t(arrays["residue_index"][tokens], torch.long),
        "token_index": torch.arange(n),
        "asym_id": t(arrays["asym_id"][tokens], torch.long),
        "entity_id": t(arrays["entity_id"][tokens], torch.long),
        "sym_id": t(arrays["sym_id"][tokens], torch.long),
        "restype": t(arrays["restype"][tokens], torch.long),
        "is_protein": t(mol == PROTEIN, torch.bool),
        "is_rna": t(mol == RNA, torch.bool),
        "is_dna": t(mol == DNA, torch.bool),
        "is_ligand": t(mol == LIGAND, torch.bool),
        "token_bonds": token_bonds,
        "token_center_atom": t(atom_map[arrays["center_atom"][tokens]], torch.long),
        "token_disto_atom": t(atom_map[arrays["disto_atom"][tokens]], torch.long),
        "msa": t(msa, torch.long),
        "msa_mask": t(arrays["msa_mask"][rows][:, tokens], torch.bool),
        "has_deletion": t(deletions > 0, torch.float32),
        "deletion_value": t(2.0 / np.pi * np.arctan(deletions / 3.0), torch.float32),
        "profile": t(arrays["profile"][tokens], torch.float32),
        "deletion_mean": t(arrays["deletion_mean"][tokens], torch.float32),
        "atom_mask": torch.ones(len(atoms), dtype=torch.bool),
        "atom_to_token": t(np.repeat(np.arange(n), counts), torch.long),
        "ref_pos": t(ref_pos, torch.float32),
        "ref_element": t(arrays["ref_element"][atoms], torch.long),
        "ref_charge": t(arrays["ref_charge"][atoms], torch.float32),
        "ref_atom_name_chars": t(arrays["ref_atom_name_chars"][atoms], torch.long),
        "ref_space_uid": t(arrays["ref_space_uid"][atoms], torch.long),
        "gt_coords": t(arrays["gt_coords"][atoms], torch.float32),
        "gt_atom_mask": t(arrays["gt_atom_mask"][atoms], torch.bool),
    }
