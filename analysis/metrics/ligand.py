"""Protein–ligand pose metrics: binding-site superposed, symmetry-corrected ligand RMSD and lDDT-PLI.

- Binding site: reference polymer residues with any heavy atom within 4 Å of the ligand; the model is
  superposed on their representative atoms (Cα, C3′ for nucleotides).
- RMSD: heavy-atom ligand RMSD after that superposition (no refit on the ligand), minimised over the graph
  automorphisms of the ligand (bond graph from the CCD via the structure's bonds; element-preserving).
- lDDT-PLI: over reference ligand–polymer atom pairs closer than 6 Å, the fraction of thresholds
  {0.5, 1, 2, 4} Å that |Δd| stays below; maximised over the same automorphisms; missing model polymer atoms
  count as not preserved. (This is the reference-contact form; the OpenStructure variant also penalises
  model-only contacts.)
- Success: RMSD < 2 Å and lDDT-PLI > 0.8.
"""

from __future__ import annotations

from dataclasses import dataclass

import biotite.structure as struc
import numpy as np
from scipy.spatial import cKDTree

from analysis.metrics.chain_mapping import map_chains_by_score
from analysis.metrics.correspondence import (
    REPRESENTATIVE_ATOMS,
    CorrespondenceError,
    ligand_mask,
    pair_chains,
    polymer_chains,
)
from analysis.metrics.lddt import THRESHOLDS
from analysis.metrics.superpose import apply, kabsch
from analysis.metrics.symmetry import automorphisms, molecular_graph

POCKET_CUTOFF = 4.0
PLI_RADIUS = 6.0
RMSD_SUCCESS = 2.0
LDDT_PLI_SUCCESS = 0.8
MIN_POCKET_ANCHORS = 3


@dataclass(frozen=True)
class LigandSelector:
    """Which ligand residue of the reference to score: CCD code, optionally its chain and residue number."""

    res_name: str
    chain_id: str | None = None
    res_id: int | None = None

    @classmethod
    def parse(cls, text: str) -> LigandSelector:
        """Parse ``"FTA"``, ``"A:FTA"`` or ``"A:FTA:301"``; raises ValueError for anything else."""
        parts = [p.strip() for p in text.strip().split(":")]
        try:
            if len(parts) == 1 and parts[0]:
                return cls(parts[0])
            if len(parts) == 2 and all(parts):
                return cls(parts[1], parts[0])
            if len(parts) == 3 and all(parts):
                return cls(parts[1], parts[0], int(parts[2]))
        except ValueError:
            pass
        raise ValueError(f"ligand {text!r}: expected 'CCD', 'CHAIN:CCD' or 'CHAIN:CCD:RESNUM'")

    def residues(self, atoms: struc.AtomArray) -> list[np.ndarray]:
        """Atom index arrays of the matching non-polymer residues, in file order."""
        hit = ligand_mask(atoms) & (atoms.res_name == self.res_name)
        if self.chain_id is not None:
            hit &= atoms.chain_id == self.chain_id
        if self.res_id is not None:
            hit &= atoms.res_id == self.res_id
        index = np.flatnonzero(hit)
        if len(index) == 0:
            return []
        keys = np.stack([atoms.chain_id[index], atoms.res_id[index].astype(str)], axis=1)
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        return [index[inverse.ravel() == k] for k in np.argsort(first)]


@dataclass(frozen=True)
class LigandScore:
    """Pose quality of one ligand: RMSD in Å, lDDT-PLI in [0, 1]."""

    ligand: str
    model_ligand: str
    rmsd: float
    lddt_pli: float
    n_pocket_anchors: int
    n_pli_contacts: int
    n_automorphisms: int

    @property
    def success(self) -> bool:
        return self.rmsd < RMSD_SUCCESS and self.lddt_pli > LDDT_PLI_SUCCESS


def _label(atoms: struc.AtomArray, index: np.ndarray) -> str:
    i = index[0]
    return f"{atoms.chain_id[i]}:{atoms.res_name[i]}:{atoms.res_id[i]}"


def _ligand_graph_permutations(atoms: struc.AtomArray, index: np.ndarray, max_count: int) -> np.ndarray:
    """(K, n) element-preserving automorphisms of the ligand's heavy-atom bond graph (identity first)."""
    if atoms.bonds is not None:
        bonds = atoms.bonds[index].as_array()[:, :2]
    else:
        bonds = np.zeros((0, 2), dtype=np.int64)
    if len(index) > 1 and len(bonds) == 0:
        # No bond information (e.g. a PDB file with an unknown CCD code): infer bonds from the geometry.
        bonds = struc.connect_via_distances(atoms[index]).as_array()[:, :2]
    graph = molecular_graph(atoms.element[index], bonds)
    perms = list(automorphisms(graph, max_count=max_count))
    identity = np.arange(len(index))
    perms = [identity] + [p for p in perms if not np.array_equal(p, identity)]
    return np.stack(perms)


def _match_model_ligand(
    reference: struc.AtomArray, ref_lig: np.ndarray, model: struc.AtomArray, model_lig: np.ndarray
) -> np.ndarray:
    """Model atom index for each reference ligand atom, matched by atom name; raises if any is missing."""
    lookup = {str(n): i for i, n in zip(model_lig, model.atom_name[model_lig], strict=True)}
    missing = [str(n) for n in reference.atom_name[ref_lig] if str(n) not in lookup]
    if missing:
        raise CorrespondenceError(
            f"model ligand {_label(model, model_lig)} lacks atoms {', '.join(missing[:8])}"
            + (" ..." if len(missing) > 8 else "")
        )
    return np.array([lookup[str(n)] for n in reference.atom_name[ref_lig]], dtype=np.int64)


def _pocket_anchors(reference: struc.AtomArray, ref_lig: np.ndarray, cutoff: float) -> np.ndarray:
    """Reference atom indices of the representative atoms of binding-site residues."""
    polymer = np.flatnonzero(~ligand_mask(reference))
    tree = cKDTree(reference.coord[polymer])
    near = np.unique(np.concatenate(tree.query_ball_point(reference.coord[ref_lig], cutoff)).astype(np.int64))
    near_atoms = polymer[near]
    residue_of = struc.get_residue_positions(reference, np.arange(reference.array_length()))
    in_pocket = np.isin(residue_of, residue_of[near_atoms])
    amino = struc.filter_amino_acids(reference)
    rep = np.where(amino, reference.atom_name == REPRESENTATIVE_ATOMS["protein"], reference.atom_name == "C3'")
    return np.flatnonzero(in_pocket & rep & ~ligand_mask(reference))


def ligand_pose(
    reference: struc.AtomArray,
    model: struc.AtomArray,
    ligand: LigandSelector | str,
    *,
    chain_map: dict[str, str] | None = None,
    pocket_cutoff: float = POCKET_CUTOFF,
    pli_radius: float = PLI_RADIUS,
    max_automorphisms: int = 10_000,
) -> LigandScore:
    """Score the model's pose of one reference ligand (the best-scoring model copy if it has several).

    Raises :class:`CorrespondenceError` when the ligand is absent from either structure, a model copy lacks
    ligand atoms, or fewer than 3 binding-site anchors can be paired.
    """
    selector = LigandSelector.parse(ligand) if isinstance(ligand, str) else ligand
    ref_copies = selector.residues(reference)
    if not ref_copies:
        raise CorrespondenceError(f"reference has no ligand {selector}")
    if len(ref_copies) > 1:
        raise CorrespondenceError(
            f"ligand {selector} matches {len(ref_copies)} reference residues "
            f"({', '.join(_label(reference, c) for c in ref_copies)}); give chain and residue number"
        )
    ref_lig = ref_copies[0]
    model_copies = LigandSelector(selector.res_name).residues(model)
    if not model_copies:
        raise CorrespondenceError(f"model has no ligand {selector.res_name}")

    ref_chains, model_chains = polymer_chains(reference), polymer_chains(model)
    anchors = _pocket_anchors(reference, ref_lig, pocket_cutoff)
    anchor_set = set(anchors.tolist())

    def anchor_pairs(mapping: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
        pairing = pair_chains(ref_chains, model_chains, mapping)
        keep = np.isin(pairing.ref_index, anchors) & (pairing.model_index >= 0)
        return pairing.ref_index[keep], pairing.model_index[keep]

    if chain_map is None:
        pocket_chains = {c for c in reference.chain_id[list(anchor_set)]} if len(anchors) else set()

        def n_paired(mapping: dict[str, str]) -> float:
            ref_idx, model_idx = anchor_pairs(mapping)
            if len(ref_idx) < MIN_POCKET_ANCHORS:
                return float(len(ref_idx))
            rot, trans = kabsch(model.coord[model_idx], reference.coord[ref_idx])
            err = np.linalg.norm(apply(model.coord[model_idx], rot, trans) - reference.coord[ref_idx], axis=-1)
            return float(len(ref_idx)) - float(np.sqrt(np.mean(err**2))) / 1000.0

        scoped = {c: ref_chains[c] for c in ref_chains if c in pocket_chains}
        chain_map = map_chains_by_score(scoped, model_chains, n_paired)
    ref_anchor, model_anchor = anchor_pairs(chain_map)
    if len(ref_anchor) < MIN_POCKET_ANCHORS:
        raise CorrespondenceError(
            f"ligand {_label(reference, ref_lig)}: only {len(ref_anchor)} binding-site anchors "
            f"(Cα/C3′ within {pocket_cutoff} Å) could be paired with the model, need {MIN_POCKET_ANCHORS}"
        )
    rotation, translation = kabsch(model.coord[model_anchor], reference.coord[ref_anchor])

    perms = _ligand_graph_permutations(reference, ref_lig, max_automorphisms)
    ref_coords = reference.coord[ref_lig].astype(np.float64)

    # lDDT-PLI contacts: reference ligand atom × polymer atom pairs below pli_radius.
    full_pairing = pair_chains(ref_chains, model_chains, chain_map)
    polymer_tree = cKDTree(reference.coord[full_pairing.ref_index])
    contact_lists = polymer_tree.query_ball_point(ref_coords, pli_radius)
    lig_i = np.repeat(np.arange(len(ref_lig)), [len(c) for c in contact_lists])
    poly_j = np.concatenate([np.asarray(c, dtype=np.int64) for c in contact_lists]) if len(lig_i) else lig_i
    ref_d = np.linalg.norm(ref_coords[lig_i] - reference.coord[full_pairing.ref_index[poly_j]], axis=-1)
    strict = ref_d < pli_radius
    lig_i, poly_j, ref_d = lig_i[strict], poly_j[strict], ref_d[strict]
    model_poly = full_pairing.model_coords(model)[poly_j]

    best: LigandScore | None = None
    for copy in model_copies:
        matched = _match_model_ligand(reference, ref_lig, model, copy)
        model_coords = model.coord[matched].astype(np.float64)
        # Atom i of the reference is scored against the model atom playing its role under permutation p.
        candidates = model_coords[perms]  # (K, n, 3)
        aligned = apply(candidates, rotation, translation)
        rmsds = np.sqrt(np.mean(np.sum((aligned - ref_coords) ** 2, axis=-1), axis=-1))
        if len(lig_i):
            model_d = np.linalg.norm(candidates[:, lig_i] - model_poly[None], axis=-1)
            with np.errstate(invalid="ignore"):
                kept = np.abs(model_d - ref_d)[..., None] < np.asarray(THRESHOLDS)
            pli = kept.mean(axis=(-1, -2))
            lddt_pli = float(pli.max())
        else:
            lddt_pli = float("nan")
        score = LigandScore(
            ligand=_label(reference, ref_lig),
            model_ligand=_label(model, copy),
            rmsd=float(rmsds.min()),
            lddt_pli=lddt_pli,
            n_pocket_anchors=len(ref_anchor),
            n_pli_contacts=len(lig_i),
            n_automorphisms=len(perms),
        )
        if best is None or score.rmsd < best.rmsd:
            best = score
    assert best is not None
    return best
