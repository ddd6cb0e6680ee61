"""Protein–ligand pose metrics: binding-site superposed, symmetry-corrected ligand RMSD and lDDT-PLI.

- Binding site: reference polymer residues with any heavy atom within 4 Å of the ligand; the model is
  superposed on their representative atoms (Cα, C3′ for nucleotides).
- RMSD: heavy-atom ligand RMSD after that superposition (no refit on the ligand), minimised over the graph
  automorphisms of the ligand (bond graph from the CCD via the structure's bonds; element-preserving).
- lDDT-PLI: over ligand–polymer atom pairs, the fraction of thresholds {0.5, 1, 2, 4} Å that |Δd| stays
  below, maximised over the same automorphisms. Pairs: reference pairs closer than 6 Å, plus (with
  ``add_mdl_contacts``, newer OpenStructure's default; not FoldBench's, see ``analysis.conventions``) pairs
  closer than 6 Å in the model only, which then count against the model unless their reference distance is
  within the thresholds. Missing model polymer atoms count
  as not preserved; model-only contacts are formed only by model atoms that have a reference counterpart.
- Symmetric side chains (ASP, GLU, LEU, VAL, ARG, PHE, TYR) of the binding site take, per residue and per
  ligand automorphism, the naming that scores better, as OpenStructure does before lDDT-PLI; with model
  contacts the per-residue choices are optimised jointly for the pooled score (Dinkelbach iteration).
- Success: RMSD < 2 Å and lDDT-PLI > 0.8.

Remaining differences from OpenStructure 2.8: ligands are single CCD residues matched to model copies by atom
name (OST matches any chemically identical model ligand by graph isomorphism), and the chain mapping is the one
that pairs most binding-site anchors (OST uses its global chain mapping).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from analysis.metrics.symmetry import automorphisms, molecular_graph, side_chain_swaps

POCKET_CUTOFF = 4.0
PLI_RADIUS = 6.0
RMSD_SUCCESS = 2.0
LDDT_PLI_SUCCESS = 0.8
MIN_POCKET_ANCHORS = 3


@dataclass(frozen=True)
class LigandSelector:
    """Which ligand residue of the reference to score: CCD code and/or chain, optionally the residue number.

    ``text`` keeps what the user wrote, for messages.
    """

    res_name: str | None
    chain_id: str | None = None
    res_id: int | None = None
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> LigandSelector:
        """Parse ``"FTA"``, ``"A:FTA"``, ``"A:FTA:301"`` or ``"A:*"`` (any ligand of chain A).

        Raises ValueError for anything else.
        """
        raw = text
        parts = [p.strip() for p in text.strip().split(":")]
        try:
            if len(parts) == 1 and parts[0] and parts[0] != "*":
                return cls(parts[0], text=raw.strip())
            if len(parts) == 2 and all(parts):
                return cls(None if parts[1] == "*" else parts[1], parts[0], text=raw.strip())
            if len(parts) == 3 and all(parts):
                return cls(None if parts[1] == "*" else parts[1], parts[0], int(parts[2]), text=raw.strip())
        except ValueError:
            pass
        raise ValueError(f"ligand {text!r}: expected 'CCD', 'CHAIN:CCD', 'CHAIN:CCD:RESNUM' or 'CHAIN:*'")

    def __str__(self) -> str:
        if self.text:
            return repr(self.text)
        parts = [self.chain_id, self.res_name or "*", None if self.res_id is None else str(self.res_id)]
        return repr(":".join(p for p in parts if p is not None))

    def residues(self, atoms: struc.AtomArray) -> list[np.ndarray]:
        """Atom index arrays of the matching non-polymer residues, in file order."""
        hit = ligand_mask(atoms)
        if self.res_name is not None:
            hit &= atoms.res_name == self.res_name
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


def _pli_scores(
    ref_lig: np.ndarray,
    candidates: np.ndarray,
    ref_poly: np.ndarray,
    model_poly: np.ndarray,
    partner: np.ndarray,
    owner: np.ndarray,
    *,
    radius: float,
    add_mdl_contacts: bool,
    chunk: int = 64,
) -> tuple[np.ndarray, int]:
    """lDDT-PLI per ligand automorphism with symmetric binding-site side chains resolved.

    ``ref_lig`` (n, 3) reference ligand; ``candidates`` (K, n, 3) model ligand under each automorphism;
    ``ref_poly``/``model_poly`` (J, 3) paired polymer atoms (model NaN where missing); ``partner`` (J,) the column
    each atom swaps with when its residue is renamed (itself when not swappable); ``owner`` (J,) swappable
    residue number 0..G-1 or -1. Returns (K,) scores (NaN without contacts) and the reference contact count.
    """
    thresholds = np.asarray(THRESHOLDS)
    ref_d = np.linalg.norm(ref_lig[:, None] - ref_poly[None], axis=-1)  # (n, J)
    ref_contact = ref_d < radius
    n_groups = int(owner.max()) + 1 if len(owner) else 0
    grouped = owner >= 0
    out = np.empty(len(candidates))
    for start in range(0, len(candidates), chunk):
        cand = candidates[start : start + chunk]  # (k, n, 3)
        sums = []
        for poly in (model_poly, model_poly[partner]):
            model_d = np.linalg.norm(cand[:, :, None] - poly[None, None], axis=-1)  # (k, n, J)
            with np.errstate(invalid="ignore"):
                kept = (np.abs(model_d - ref_d)[..., None] < thresholds).mean(-1)
                contact = ref_contact | (add_mdl_contacts & (model_d < radius))
            kept = np.where(contact, kept, 0.0)
            # Sum over ligand atoms, then per column: conserved (a) and contact count (b).
            sums.append((kept.sum(1), contact.sum(1).astype(np.float64)))
        (a_orig, b_orig), (a_swap, b_swap) = sums
        base_a = a_orig[:, ~grouped].sum(-1)
        base_b = b_orig[:, ~grouped].sum(-1)

        def per_group(x: np.ndarray) -> np.ndarray:
            g = np.zeros((n_groups, len(x)))
            np.add.at(g, owner[grouped], x[:, grouped].T)
            return g.T

        ga_o, gb_o, ga_s, gb_s = (per_group(x) for x in (a_orig, b_orig, a_swap, b_swap))
        # Dinkelbach: maximise (A + Σ a_g) / (B + Σ b_g) over per-group choices; exact after convergence, and
        # a plain per-group max when b_g does not depend on the choice (no model contacts).
        with np.errstate(invalid="ignore", divide="ignore"):
            lam = (base_a + ga_o.sum(-1)) / (base_b + gb_o.sum(-1))
            for _ in range(20):
                lam0 = np.nan_to_num(lam)[:, None]
                swap = (ga_s - lam0 * gb_s) > (ga_o - lam0 * gb_o) + 1e-12
                a = base_a + np.where(swap, ga_s, ga_o).sum(-1)
                b = base_b + np.where(swap, gb_s, gb_o).sum(-1)
                new = np.where(b > 0, a / np.maximum(b, 1), np.nan)
                if np.allclose(np.nan_to_num(new), np.nan_to_num(lam), atol=1e-12):
                    lam = new
                    break
                lam = new
        out[start : start + chunk] = lam
    return out, int(ref_contact.sum())


def _symmetry_columns(reference: struc.AtomArray, ref_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``partner`` and ``owner`` (J,) for the polymer atoms ``ref_index`` (see :func:`_pli_scores`)."""
    partner = np.arange(len(ref_index))
    owner = np.full(len(ref_index), -1, dtype=np.int64)
    if len(ref_index) == 0:
        return partner, owner
    residue_key = struc.get_residue_positions(reference, ref_index)
    swaps = side_chain_swaps(reference.res_name[ref_index], reference.atom_name[ref_index], residue_key)
    for k, swap in enumerate(swaps):
        partner[swap[0]] = swap[1]
        owner[swap[0]] = k
    return partner, owner


def ligand_pose(
    reference: struc.AtomArray,
    model: struc.AtomArray,
    ligand: LigandSelector | str,
    *,
    chain_map: dict[str, str] | None = None,
    pocket_cutoff: float = POCKET_CUTOFF,
    pli_radius: float = PLI_RADIUS,
    add_mdl_contacts: bool = False,
    resolve_symmetry: bool = True,
    max_automorphisms: int = 10_000,
) -> LigandScore:
    """Score the model's pose of one reference ligand (the best-scoring model copy if it has several).

    ``add_mdl_contacts``: also count model-only contacts in lDDT-PLI. Off by default (the plain
    reference-contact metric, as FoldBench scored it); ``harness eval --convention ost-latest`` turns it on, as
    newer OpenStructure releases do by default (``analysis.conventions``).
    ``resolve_symmetry``: resolve symmetric binding-site side-chain names (OpenStructure does).
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
    res_name = str(reference.res_name[ref_lig[0]])
    model_copies = LigandSelector(res_name).residues(model)
    if not model_copies:
        raise CorrespondenceError(f"model has no ligand {res_name} (reference ligand {selector})")

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

    # Polymer atoms that can form a lDDT-PLI contact: near the reference ligand, or near a model copy (model
    # contacts), closed under side-chain swaps so that a swapped column's partner is present too.
    full_pairing = pair_chains(ref_chains, model_chains, chain_map)
    ref_poly_all = reference.coord[full_pairing.ref_index].astype(np.float64)
    model_poly_all = full_pairing.model_coords(model)
    near = np.zeros(len(ref_poly_all), dtype=bool)
    near_ref = cKDTree(ref_poly_all).query_ball_point(ref_coords, pli_radius) if len(ref_poly_all) else []
    for hits in near_ref:
        near[hits] = True
    if add_mdl_contacts:
        present = np.flatnonzero(np.isfinite(model_poly_all[:, 0]))
        if len(present):
            tree = cKDTree(model_poly_all[present])
            for copy in model_copies:
                for hits in tree.query_ball_point(model.coord[copy].astype(np.float64), pli_radius):
                    near[present[hits]] = True
    partner_all, owner_all = (
        _symmetry_columns(reference, full_pairing.ref_index)
        if resolve_symmetry
        else (np.arange(len(near)), np.full(len(near), -1, dtype=np.int64))
    )
    near |= np.isin(np.arange(len(near)), partner_all[near])
    columns = np.flatnonzero(near)
    local = np.full(len(near), -1, dtype=np.int64)
    local[columns] = np.arange(len(columns))
    partner = local[partner_all[columns]]
    owner_columns = owner_all[columns]
    owner = np.full(len(columns), -1, dtype=np.int64)
    owner[owner_columns >= 0] = np.unique(owner_columns[owner_columns >= 0], return_inverse=True)[1]

    best: LigandScore | None = None
    for copy in model_copies:
        matched = _match_model_ligand(reference, ref_lig, model, copy)
        model_coords = model.coord[matched].astype(np.float64)
        # Atom i of the reference is scored against the model atom playing its role under permutation p.
        candidates = model_coords[perms]  # (K, n, 3)
        aligned = apply(candidates, rotation, translation)
        rmsds = np.sqrt(np.mean(np.sum((aligned - ref_coords) ** 2, axis=-1), axis=-1))
        pli, n_contacts = _pli_scores(
            ref_coords,
            candidates,
            ref_poly_all[columns],
            model_poly_all[columns],
            partner,
            owner,
            radius=pli_radius,
            add_mdl_contacts=add_mdl_contacts,
        )
        finite = pli[np.isfinite(pli)]
        score = LigandScore(
            ligand=_label(reference, ref_lig),
            model_ligand=_label(model, copy),
            rmsd=float(rmsds.min()),
            lddt_pli=float(finite.max()) if len(finite) else float("nan"),
            n_pocket_anchors=len(ref_anchor),
            n_pli_contacts=n_contacts,
            n_automorphisms=len(perms),
        )
        if best is None or score.rmsd < best.rmsd:
            best = score
    assert best is not None
    return best
