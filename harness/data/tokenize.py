"""AF3 tokenisation of a parsed :class:`~harness.data.parse.Structure` into flat numpy arrays (SI §2.6).

One token per standard residue / nucleotide; one token per heavy atom of ligands and modified residues.
Every token's atoms are contiguous in the atom arrays (``atom_start``, ``atom_count``), which is what lets
cropping slice atoms with one vectorised gather.

Output (``Tokens.arrays``), N tokens, A atoms, E token bonds:
    restype (N,) int8          index into models.features.RESTYPES
    residue_index (N,) int32   1-based position in the entity sequence (ligands: residue within the chain)
    asym_id, entity_id, sym_id (N,) int32, all 1-based
    mol_type (N,) int8         0 protein, 1 RNA, 2 DNA, 3 ligand / modified-residue atom
    token_plddt (N,) float32   pLDDT of predicted structures, NaN for experimental ones
    atom_start, atom_count (N,) int32
    center_atom, disto_atom (N,) int32   atom indices (CA/C1'/the atom; CB|CA-for-GLY/C4/C2/the atom)
    atom_to_token (A,) int32, ref_pos (A, 3) float32 Å, ref_element (A,) int16 atomic number,
    ref_charge (A,) int8, ref_atom_name_chars (A, 4) uint8 (ord(c) - 32), ref_space_uid (A,) int32,
    gt_coords (A, 3) float32 Å, gt_atom_mask (A,) bool
    token_bonds (E, 2) int32   token pairs (i < j) joined by a covalent bond that involves a ligand or
                               modified-residue atom (standard polymer backbone bonds are implicit)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.data.ccd import Component, component
from harness.data.constants import (
    LIGAND,
    POLYMER_LEAVING_ATOMS,
    PROTEIN,
    RNA,
    STANDARD_RESIDUES,
    center_atom_name,
    disto_atom_name,
    restype_of,
)
from harness.data.parse import Structure

# Backbone atoms that link residue i (first) to residue i+1 (second).
_LINK_ATOMS = {PROTEIN: ("C", "N"), RNA: ("O3'", "P"), 2: ("O3'", "P")}


@dataclass
class Tokens:
    """Flat arrays of one example plus per-chain metadata (``chains``: list of dicts for the cache index)."""

    arrays: dict[str, np.ndarray]
    chains: list[dict]

    @property
    def n_tokens(self) -> int:
        return len(self.arrays["restype"])

    @property
    def n_atoms(self) -> int:
        return len(self.arrays["atom_to_token"])


def _name_chars(names: np.ndarray) -> np.ndarray:
    padded = np.char.ljust(names.astype("U4"), 4)
    codes = padded.view(np.uint32).reshape(-1, 4).astype(np.int64) - 32
    return np.clip(codes, 0, 63).astype(np.uint8)


def _polymer_atoms(comp: Component) -> np.ndarray:
    return np.flatnonzero(~np.isin(comp.atom_names, list(POLYMER_LEAVING_ATOMS)))


def tokenize(structure: Structure) -> Tokens:
    """Tokenise every chain of ``structure``; raises UnknownCCDError for a code missing from the CCD."""
    tok: dict[str, list] = {
        k: []
        for k in (
            "restype",
            "residue_index",
            "asym_id",
            "entity_id",
            "sym_id",
            "mol_type",
            "token_plddt",
            "atom_start",
            "atom_count",
            "center_atom",
            "disto_atom",
        )
    }
    atom_chunks: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "atom_to_token",
            "ref_pos",
            "ref_element",
            "ref_charge",
            "names",
            "ref_space_uid",
            "gt_coords",
            "gt_atom_mask",
        )
    }
    entity_ids: dict[str, int] = {}
    entity_copies: dict[int, int] = {}
    # (chain, residue) -> (first token, CCD atom name -> global atom index, per-atom tokens?)
    residue_index_of: dict[tuple[int, int], tuple[int, dict[str, int], bool]] = {}
    chain_meta = []
    n_atoms = 0
    space_uid = 0
    for c_idx, chain in enumerate(structure.chains):
        entity = entity_ids.setdefault(chain.entity_key, len(entity_ids) + 1)
        entity_copies[entity] = entity_copies.get(entity, 0) + 1
        asym = c_idx + 1
        first_token = len(tok["restype"])
        for r_idx, res in enumerate(chain.residues):
            comp = structure.components.get(res.name) or component(res.name, structure.path)
            standard = chain.mol_type != LIGAND and res.name in STANDARD_RESIDUES
            keep = _polymer_atoms(comp) if chain.mol_type != LIGAND else np.arange(len(comp.atom_names))
            names = comp.atom_names[keep]
            n = len(keep)
            if n == 0:
                continue
            ref = comp.ideal_pos[keep]
            ref = ref - ref.mean(axis=0, keepdims=True)
            gt = np.zeros((n, 3), dtype=np.float32)
            mask = np.zeros(n, dtype=bool)
            local = {name: i for i, name in enumerate(names)}
            for name, xyz in res.atoms.items():
                i = local.get(name)
                if i is not None:
                    gt[i] = xyz
                    mask[i] = True
            t0 = len(tok["restype"])
            if standard:
                n_tok = 1
                atom_to_token = np.full(n, t0, dtype=np.int32)
                rt = [restype_of(res.name, chain.mol_type)]
                center = local.get(center_atom_name(res.name, chain.mol_type), 0)
                disto = local.get(disto_atom_name(res.name, chain.mol_type), center)
                centers, distos = [n_atoms + center], [n_atoms + disto]
                starts, counts = [n_atoms], [n]
                mol = [chain.mol_type]
            else:
                n_tok = n
                atom_to_token = np.arange(t0, t0 + n, dtype=np.int32)
                parent_type = chain.mol_type if chain.mol_type != LIGAND else LIGAND
                rt = [restype_of(comp.parent or res.name, parent_type)] * n
                centers = distos = starts = list(range(n_atoms, n_atoms + n))
                counts = [1] * n
                mol = [LIGAND] * n
            tok["restype"] += rt
            tok["residue_index"] += [res.seq_pos] * n_tok
            tok["asym_id"] += [asym] * n_tok
            tok["entity_id"] += [entity] * n_tok
            tok["sym_id"] += [entity_copies[entity]] * n_tok
            tok["mol_type"] += mol
            tok["token_plddt"] += [res.plddt if structure.predicted else np.nan] * n_tok
            tok["atom_start"] += starts
            tok["atom_count"] += counts
            tok["center_atom"] += centers
            tok["disto_atom"] += distos
            atom_chunks["atom_to_token"].append(atom_to_token)
            atom_chunks["ref_pos"].append(ref)
            atom_chunks["ref_element"].append(comp.elements[keep])
            atom_chunks["ref_charge"].append(comp.charges[keep])
            atom_chunks["names"].append(names)
            atom_chunks["ref_space_uid"].append(np.full(n, space_uid, dtype=np.int32))
            atom_chunks["gt_coords"].append(gt)
            atom_chunks["gt_atom_mask"].append(mask)
            residue_index_of[(c_idx, r_idx)] = (t0, {k: n_atoms + v for k, v in local.items()}, not standard)
            n_atoms += n
            space_uid += 1
        chain_meta.append(
            {
                "asym_id": asym,
                "auth_id": chain.auth_id,
                "label_id": chain.label_id,
                "entity_id": entity,
                "entity_key": chain.entity_key,
                "mol_type": chain.mol_type,
                "sequence": chain.sequence,
                "token_start": first_token,
                "token_end": len(tok["restype"]),
                "n_resolved": int(sum(bool(r.atoms) for r in chain.residues)),
            }
        )
    if not tok["restype"]:
        from harness.data.errors import StructureParseError

        raise StructureParseError(structure.path, "no tokens: every chain was empty after filtering")
    bonds = _token_bonds(structure, residue_index_of, atom_chunks)
    names = np.concatenate(atom_chunks.pop("names"))
    arrays = {
        "restype": np.asarray(tok["restype"], dtype=np.int8),
        "residue_index": np.asarray(tok["residue_index"], dtype=np.int32),
        "asym_id": np.asarray(tok["asym_id"], dtype=np.int32),
        "entity_id": np.asarray(tok["entity_id"], dtype=np.int32),
        "sym_id": np.asarray(tok["sym_id"], dtype=np.int32),
        "mol_type": np.asarray(tok["mol_type"], dtype=np.int8),
        "token_plddt": np.asarray(tok["token_plddt"], dtype=np.float32),
        "atom_start": np.asarray(tok["atom_start"], dtype=np.int32),
        "atom_count": np.asarray(tok["atom_count"], dtype=np.int32),
        "center_atom": np.asarray(tok["center_atom"], dtype=np.int32),
        "disto_atom": np.asarray(tok["disto_atom"], dtype=np.int32),
        "atom_to_token": np.concatenate(atom_chunks["atom_to_token"]),
        "ref_pos": np.concatenate(atom_chunks["ref_pos"]).astype(np.float32),
        "ref_element": np.concatenate(atom_chunks["ref_element"]).astype(np.int16),
        "ref_charge": np.concatenate(atom_chunks["ref_charge"]).astype(np.int8),
        "ref_atom_name_chars": _name_chars(names),
        "ref_space_uid": np.concatenate(atom_chunks["ref_space_uid"]),
        "gt_coords": np.concatenate(atom_chunks["gt_coords"]),
        "gt_atom_mask": np.concatenate(atom_chunks["gt_atom_mask"]),
        "token_bonds": bonds,
    }
    return Tokens(arrays, chain_meta)


def _token_bonds(structure: Structure, residues: dict, atom_chunks: dict) -> np.ndarray:
    """Covalent bonds touching a per-atom token: CCD bonds inside ligands/modified residues, backbone links
    of modified residues to their neighbours, and ``struct_conn`` covalent links (glycans, adducts)."""
    atom_to_token = np.concatenate(atom_chunks["atom_to_token"])
    pairs: list[tuple[int, int]] = []
    for (c_idx, r_idx), (_, atom_of, per_atom) in residues.items():
        if not per_atom:
            continue
        res = structure.chains[c_idx].residues[r_idx]
        comp = structure.components.get(res.name) or component(res.name, structure.path)
        for i, j in comp.bonds:
            a, b = atom_of.get(comp.atom_names[i]), atom_of.get(comp.atom_names[j])
            if a is not None and b is not None:
                pairs.append((a, b))
        link = _LINK_ATOMS.get(structure.chains[c_idx].mol_type)
        if link is None:
            continue
        for nb, (mine, theirs) in ((r_idx - 1, (link[1], link[0])), (r_idx + 1, link)):
            other = residues.get((c_idx, nb))
            if other is not None and mine in atom_of and theirs in other[1]:
                pairs.append((atom_of[mine], other[1][theirs]))
    for (c1, r1, a1), (c2, r2, a2) in structure.bonds:
        e1, e2 = residues.get((c1, r1)), residues.get((c2, r2))
        if e1 is None or e2 is None or not (e1[2] or e2[2]):
            continue
        if a1 in e1[1] and a2 in e2[1]:
            pairs.append((e1[1][a1], e2[1][a2]))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int32)
    tokens = np.sort(atom_to_token[np.asarray(pairs)], axis=1)
    tokens = tokens[tokens[:, 0] != tokens[:, 1]]
    return np.unique(tokens, axis=0).astype(np.int32).reshape(-1, 2)
