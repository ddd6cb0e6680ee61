"""lDDT (Mariani et al. 2013) as used by FoldBench / AF3 evaluation (docs/DESIGN.md §3).

Definition: over atom pairs (i, j) whose *reference* distance is below the inclusion radius (15 Å), excluding
pairs inside one residue, the fraction of the thresholds {0.5, 1, 2, 4} Å that |d_model − d_ref| stays below,
pooled over all pairs. Reference atoms missing in the model count as not preserved.

Two APIs:

- :func:`lddt` (structure level, numpy): reference and model ``AtomArray``s, residues paired by sequence,
  symmetric side-chain naming resolved per residue, global / per-chain / per-residue / interface-only and
  Cα/C3′-only variants.
- :func:`lddt_torch` (tensor level, for validation on batches): coordinates already in correspondence
  (``(B, A, 3)``), masks, optional token ids to exclude intra-token pairs. Given the batch's ``restype`` and
  ``ref_atom_name_chars`` it resolves symmetric side-chain naming per residue exactly as :func:`lddt` does, then
  scores with the one torch lDDT, ``models.lddt.lddt`` (no pair: NaN); it never re-pairs chains or residues (the
  data pipeline's atom order is the correspondence).

Thresholds and the inclusion radius are ``models.lddt``'s (one home for both lDDTs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import biotite.structure as struc
import numpy as np
import torch
from scipy.spatial import cKDTree

from analysis.metrics.correspondence import (
    REPRESENTATIVE_ATOMS,
    AtomPairing,
    Chain,
    pair_chains,
    polymer_chains,
)
from analysis.metrics.symmetry import side_chain_swaps
from models.lddt import INCLUSION_RADIUS, THRESHOLDS, atom_radius
from models.lddt import lddt as lddt_core

# ----------------------------------------------------------------------------------------------------
# Core: pairs and their scores.


@dataclass(frozen=True)
class ContactSet:
    """Unordered reference contacts: ``i``, ``j`` (P,) atom indices with i < j and ``ref_dist`` (P,) in Å."""

    i: np.ndarray
    j: np.ndarray
    ref_dist: np.ndarray


def find_contacts(
    ref_coords: np.ndarray,
    residue_key: np.ndarray,
    chain_key: np.ndarray,
    *,
    inclusion_radius: float = INCLUSION_RADIUS,
    pairs: str = "all",
) -> ContactSet:
    """Reference pairs closer than ``inclusion_radius`` between different residues.

    ``ref_coords`` (M, 3) Å; ``residue_key``/``chain_key`` (M,) ints identifying residue and chain.
    ``pairs``: "all", "inter_chain" (interface lDDT) or "intra_chain".
    """
    if len(ref_coords) < 2:
        empty = np.zeros(0, dtype=np.int64)
        return ContactSet(empty, empty, np.zeros(0))
    ij = cKDTree(ref_coords).query_pairs(inclusion_radius, output_type="ndarray")
    i, j = ij[:, 0].astype(np.int64), ij[:, 1].astype(np.int64)
    keep = residue_key[i] != residue_key[j]
    if pairs == "inter_chain":
        keep &= chain_key[i] != chain_key[j]
    elif pairs == "intra_chain":
        keep &= chain_key[i] == chain_key[j]
    elif pairs != "all":
        raise ValueError(f"pairs must be 'all', 'inter_chain' or 'intra_chain', got {pairs!r}")
    i, j = i[keep], j[keep]
    ref_dist = np.linalg.norm(ref_coords[i] - ref_coords[j], axis=-1)
    # query_pairs includes the radius itself; lDDT uses a strict inclusion radius.
    strict = ref_dist < inclusion_radius
    return ContactSet(i[strict], j[strict], ref_dist[strict])


def pair_scores(
    contacts: ContactSet, model_coords: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS
) -> np.ndarray:
    """(P,) fraction of thresholds each contact satisfies; NaN model coordinates (missing atoms) score 0."""
    model_dist = np.linalg.norm(model_coords[contacts.i] - model_coords[contacts.j], axis=-1)
    deviation = np.abs(model_dist - contacts.ref_dist)
    with np.errstate(invalid="ignore"):
        preserved = deviation[:, None] < np.asarray(thresholds)[None, :]
    return preserved.mean(axis=-1)


def resolve_side_chain_symmetry(
    contacts: ContactSet,
    model_coords: np.ndarray,
    swaps: list[np.ndarray],
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> tuple[np.ndarray, int]:
    """Per residue, keep the model's side-chain naming or swap it, whichever scores more contacts preserved.

    Each residue is judged against its environment in the original naming (residues are independent, as in
    OpenStructure's per-residue resolution). Returns the (M, 3) renamed model coordinates and the number of
    residues swapped.
    """
    if not swaps:
        return model_coords, 0
    n_atoms = len(model_coords)
    owner = np.full(n_atoms, -1, dtype=np.int64)
    permutation = np.arange(n_atoms)
    for k, swap in enumerate(swaps):
        owner[swap[0]] = k
        permutation[swap[0]] = swap[1]
    involved = (owner[contacts.i] >= 0) | (owner[contacts.j] >= 0)
    sub = ContactSet(contacts.i[involved], contacts.j[involved], contacts.ref_dist[involved])
    original = pair_scores(sub, model_coords, thresholds)
    gain = np.zeros(len(swaps))
    for side, other in ((sub.i, sub.j), (sub.j, sub.i)):
        has_owner = owner[side] >= 0
        # Swap only this side's residue: its atom takes the model position of its symmetry partner.
        swapped_coords = model_coords[permutation[side[has_owner]]]
        model_dist = np.linalg.norm(swapped_coords - model_coords[other[has_owner]], axis=-1)
        with np.errstate(invalid="ignore"):
            deviation = np.abs(model_dist - sub.ref_dist[has_owner])
            swapped = (deviation[:, None] < np.asarray(thresholds)).mean(-1)
        np.add.at(gain, owner[side[has_owner]], swapped - original[has_owner])
    chosen = np.flatnonzero(gain > 1e-9)
    if len(chosen) == 0:
        return model_coords, 0
    final_permutation = np.arange(n_atoms)
    for k in chosen:
        final_permutation[swaps[k][0]] = swaps[k][1]
    return model_coords[final_permutation], len(chosen)


# ----------------------------------------------------------------------------------------------------
# Structure-level API.


@dataclass
class LDDTResult:
    """lDDT of a model against a reference.

    ``score``: pooled over all contacts (NaN when there are none). ``per_chain``: over contacts whose
    first atom lies in the chain (partners anywhere), keyed by reference chain id in order of appearance.
    ``per_residue``: (R,) over the directed contacts of each reference residue of the evaluated chains, in
    reference order (NaN for residues without contacts), labelled by ``residue_labels`` ("A:17").
    ``n_contacts``: unordered contact count.
    """

    score: float
    per_chain: dict[str, float]
    per_residue: np.ndarray
    residue_labels: list[str]
    n_contacts: int
    n_swapped_residues: int
    chain_map: dict[str, str] = field(default_factory=dict)


def _mean_by(keys: np.ndarray, values: np.ndarray, n_bins: int) -> np.ndarray:
    total = np.bincount(keys, weights=values, minlength=n_bins)
    count = np.bincount(keys, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def lddt_from_pairing(
    reference: struc.AtomArray,
    model: struc.AtomArray,
    pairing: AtomPairing,
    *,
    representative_only: bool = False,
    interface_only: bool = False,
    inclusion_radius: float = INCLUSION_RADIUS,
    thresholds: tuple[float, ...] = THRESHOLDS,
    resolve_symmetry: bool = True,
) -> LDDTResult:
    """lDDT over the reference atoms of ``pairing`` (see :func:`lddt` for the options)."""
    ref_index, model_index = pairing.ref_index, pairing.model_index
    if representative_only:
        names = reference.atom_name[ref_index]
        amino = struc.filter_amino_acids(reference)[ref_index]
        keep = np.where(amino, names == REPRESENTATIVE_ATOMS["protein"], names == REPRESENTATIVE_ATOMS["rna"])
        ref_index, model_index = ref_index[keep], model_index[keep]
        pairing = AtomPairing(ref_index, model_index)
    sub = reference[ref_index]
    chain_ids = sub.chain_id
    # Chains keyed in order of first appearance (as biotite does).
    chain_names = list(dict.fromkeys(chain_ids.tolist()))
    chain_key = np.array([chain_names.index(c) for c in chain_ids.tolist()], dtype=np.int64)
    residue_key = struc.get_residue_positions(sub, np.arange(len(ref_index))) if len(ref_index) else ref_index
    contacts = find_contacts(
        sub.coord.astype(np.float64),
        residue_key,
        chain_key,
        inclusion_radius=inclusion_radius,
        pairs="inter_chain" if interface_only else "all",
    )
    model_coords = pairing.model_coords(model)
    n_swapped = 0
    if resolve_symmetry and not representative_only:
        swaps = side_chain_swaps(sub.res_name, sub.atom_name, residue_key)
        model_coords, n_swapped = resolve_side_chain_symmetry(contacts, model_coords, swaps, thresholds)
    scores = pair_scores(contacts, model_coords, thresholds)
    directed_first = np.concatenate([contacts.i, contacts.j])
    directed_scores = np.concatenate([scores, scores])
    n_residues = int(residue_key.max()) + 1 if len(residue_key) else 0
    per_residue = _mean_by(residue_key[directed_first], directed_scores, n_residues)
    per_chain_values = _mean_by(chain_key[directed_first], directed_scores, len(chain_names))
    starts = struc.get_residue_starts(sub) if len(ref_index) else np.zeros(0, dtype=np.int64)
    labels = [
        f"{c}:{r}{i}" for c, r, i in zip(sub.chain_id[starts], sub.res_id[starts], sub.ins_code[starts], strict=True)
    ]
    return LDDTResult(
        score=float(scores.mean()) if len(scores) else float("nan"),
        per_chain={str(c): float(v) for c, v in zip(chain_names, per_chain_values, strict=True)},
        per_residue=per_residue,
        residue_labels=labels,
        n_contacts=len(scores),
        n_swapped_residues=n_swapped,
    )


def lddt(
    reference: struc.AtomArray,
    model: struc.AtomArray,
    *,
    chains: list[str] | None = None,
    chain_map: dict[str, str] | None = None,
    representative_only: bool = False,
    interface_only: bool = False,
    inclusion_radius: float = INCLUSION_RADIUS,
    thresholds: tuple[float, ...] = THRESHOLDS,
    resolve_symmetry: bool = True,
    strict: bool = False,
) -> LDDTResult:
    """All-atom lDDT of the polymer chains of ``model`` against ``reference`` (heavy-atom ``AtomArray``s).

    ``chains``: reference chain ids to evaluate (default: every polymer chain); contacts to other
    chains are not counted. ``chain_map``: reference → model chain id; default: the mapping that
    maximises Cα lDDT among chains of the same entity (see :mod:`analysis.metrics.chain_mapping`).
    ``representative_only``: Cα/C3′ atoms only (one per residue).
    ``strict``: map chains only to model chains with the same id.
    ``interface_only``: only contacts between different chains. Ligands are not part of this score (see
    :mod:`analysis.metrics.ligand` for lDDT-PLI).
    """
    from analysis.metrics.chain_mapping import map_chains_by_score  # avoid an import cycle

    ref_chains = _select(polymer_chains(reference), chains)
    model_chains = polymer_chains(model)

    def score(mapping: dict[str, str]) -> float:
        return lddt_from_pairing(
            reference,
            model,
            pair_chains(ref_chains, model_chains, mapping),
            representative_only=True,
            interface_only=interface_only,
            inclusion_radius=inclusion_radius,
            thresholds=thresholds,
            resolve_symmetry=False,
        ).score

    if chain_map is None:
        chain_map = map_chains_by_score(ref_chains, model_chains, score, strict=strict)
    result = lddt_from_pairing(
        reference,
        model,
        pair_chains(ref_chains, model_chains, chain_map),
        representative_only=representative_only,
        interface_only=interface_only,
        inclusion_radius=inclusion_radius,
        thresholds=thresholds,
        resolve_symmetry=resolve_symmetry,
    )
    result.chain_map = dict(chain_map)
    return result


def _select(chains: dict[str, Chain], wanted: list[str] | None) -> dict[str, Chain]:
    if wanted is None:
        return chains
    from analysis.metrics.correspondence import CorrespondenceError

    missing = [c for c in wanted if c not in chains]
    if missing:
        raise CorrespondenceError(f"reference has no polymer chain {', '.join(missing)} (has {', '.join(chains)})")
    return {c: chains[c] for c in wanted}


# ----------------------------------------------------------------------------------------------------
# Tensor API for validation on batches.


def lddt_torch(
    pred: torch.Tensor,
    true: torch.Tensor,
    atom_mask: torch.Tensor,
    *,
    atom_to_token: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    inclusion_radius: float | torch.Tensor = INCLUSION_RADIUS,
    thresholds: tuple[float, ...] = THRESHOLDS,
    per_atom: bool = False,
    chunk_size: int = 1024,
    restype: torch.Tensor | None = None,
    atom_name_chars: torch.Tensor | None = None,
) -> torch.Tensor:
    """All-atom lDDT of predicted against true coordinates already in atom correspondence.

    Args:
        pred, true: (B, A, 3) or (A, 3) coordinates in Å.
        atom_mask: (B, A) or (A,) bool, atoms resolved in the truth (and not padding); only they form pairs.
        atom_to_token: (B, A) or (A,) long; pairs within one token are excluded. Tokens are residues for
            polymers, so this is the "intra-residue pairs excluded" rule; ligand atoms are their own tokens,
            so pairs inside a ligand count (as in AF3). ``None``: only i == j is excluded.
        pred_mask: (B, A) or (A,) bool, atoms the prediction has; true-but-not-predicted atoms count as
            not preserved.
        inclusion_radius: Å, a float or a (B, A)/(A,) per-atom radius (e.g. 30 Å for nucleotide atoms, AF3's
            choice); a pair is included when the true distance is below the radius of its first atom.
        per_atom: return (B, A) per-atom lDDT (NaN where an atom has no pairs) instead of (B,).
        chunk_size: rows of the A × A distance matrix processed at once (memory B·chunk·A floats).
        restype: (B, N) or (N,) long, token residue types (indices into ``models.features.RESTYPES``), and
        atom_name_chars: (B, A, 4) or (A, 4) long, atom names as ord(c) − 32 (the batch's
            ``ref_atom_name_chars``). Given both (and ``atom_to_token``), symmetric side chains (ASP, GLU, LEU,
            VAL, ARG, PHE, TYR) take per residue the naming that preserves more, as in :func:`lddt`.

    Returns:
        (B,) pooled lDDT (NaN where no pair exists), or (B, A) with ``per_atom``; no batch dim for (A, 3)
        input. No chain/residue re-pairing: use :func:`lddt` for that.
    """
    unbatched = pred.dim() == 2
    if unbatched:
        pred, true, atom_mask = pred[None], true[None], atom_mask[None]
        atom_to_token = None if atom_to_token is None else atom_to_token[None]
        pred_mask = None if pred_mask is None else pred_mask[None]
        restype = None if restype is None else restype[None]
        atom_name_chars = None if atom_name_chars is None else atom_name_chars[None]
        if torch.is_tensor(inclusion_radius) and inclusion_radius.dim() == 1:
            inclusion_radius = inclusion_radius[None]
    if pred.shape != true.shape or pred.shape[-1] != 3:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} must both be (B, A, 3)")
    n_batch, n_atoms, _ = pred.shape
    out_dtype = pred.dtype if pred.is_floating_point() else torch.float32
    mask = atom_mask.bool()
    radius = atom_radius(inclusion_radius, n_batch, n_atoms, pred.device)
    if restype is not None and atom_name_chars is not None:
        if atom_to_token is None:
            raise ValueError("symmetry resolution (restype, atom_name_chars) needs atom_to_token")
        valid = mask if pred_mask is None else mask & pred_mask.bool()
        partner = _swap_partners(restype, atom_to_token, atom_name_chars, valid)
        if partner is not None:
            pred = _resolve_swaps(pred.double(), true.double(), mask, radius, atom_to_token, partner, pred_mask,
                                  thresholds)
    out = lddt_core(pred, true, mask, cutoff=radius, atom_to_token=atom_to_token, pred_mask=pred_mask,
                    per_atom=per_atom, empty=float("nan"), thresholds=thresholds, chunk_size=chunk_size)
    out = out.to(out_dtype)
    return out[0] if unbatched else out


def _swap_partners(
    restype: torch.Tensor, atom_to_token: torch.Tensor, atom_name_chars: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor | None:
    """(B, A) long: for atoms of a swappable side chain the atom they swap with, else the atom itself.

    Only residues whose swapped atoms are all ``valid`` (B, A) qualify. None when no residue does.
    """
    from models.features import RESTYPES

    names_table = np.array([*RESTYPES, ""])
    n_batch, n_atoms = atom_to_token.shape
    partner = np.tile(np.arange(n_atoms), (n_batch, 1))
    token = atom_to_token.cpu().numpy()
    types = restype.cpu().numpy()
    chars = atom_name_chars.cpu().numpy().astype(np.int64)
    ok = valid.cpu().numpy()
    found = False
    for b in range(n_batch):
        res_name = names_table[np.clip(types[b][np.clip(token[b], 0, types.shape[1] - 1)], 0, len(RESTYPES))]
        atom_name = np.array(["".join(chr(c + 32) for c in row).strip() for row in chars[b]])
        for swap in side_chain_swaps(res_name, atom_name, token[b]):
            if ok[b, swap[0]].all():
                partner[b, swap[0]] = swap[1]
                found = True
    return torch.from_numpy(partner).to(atom_to_token.device) if found else None


def _resolve_swaps(
    pred: torch.Tensor,
    true: torch.Tensor,
    mask: torch.Tensor,
    radius: torch.Tensor,
    atom_to_token: torch.Tensor,
    partner: torch.Tensor,
    pred_mask: torch.Tensor | None,
    thresholds: tuple[float, ...],
) -> torch.Tensor:
    """``pred`` (B, A, 3) with each swappable residue renamed where that preserves more pairs.

    Same rule as :func:`resolve_side_chain_symmetry`: each residue is judged against its environment in the
    original naming; pairs (i, j) and (j, i) both count, each with its first atom's inclusion radius.
    """
    out = pred.clone()
    for b in range(pred.shape[0]):
        rows = torch.nonzero(partner[b] != torch.arange(pred.shape[1], device=pred.device)).flatten()
        if len(rows) == 0:
            continue
        d_true = torch.cdist(true[b, rows], true[b], compute_mode="donot_use_mm_for_euclid_dist")  # (R, A)
        token_rows = atom_to_token[b, rows]
        other = (atom_to_token[b][None, :] != token_rows[:, None]) & mask[b][None, :] & mask[b, rows, None]
        if pred_mask is not None:
            other &= pred_mask[b][None, :].bool()
        weight = (d_true < radius[b, rows, None]).double() + (d_true < radius[b][None, :]).double()
        weight = weight * other

        kept = []
        for points in (pred[b, partner[b, rows]], pred[b, rows]):
            deviation = (torch.cdist(points, pred[b], compute_mode="donot_use_mm_for_euclid_dist") - d_true).abs()
            kept.append(sum((deviation < t).double() for t in thresholds) / len(thresholds))
        gain_rows = ((kept[0] - kept[1]) * weight).sum(-1)
        gain = torch.zeros(int(atom_to_token[b].max()) + 1, dtype=torch.float64, device=pred.device)
        gain.index_add_(0, token_rows, gain_rows)
        chosen = rows[gain[token_rows] > 1e-9]
        out[b, chosen] = pred[b, partner[b, chosen]]
    return out
