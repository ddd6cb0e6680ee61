"""DockQ v2 (Mirabello & Wallner 2024) for polymer–polymer interfaces: protein–protein, antibody–antigen,
protein–peptide, protein–DNA and protein–RNA.

Per native interface (a pair of reference chains with at least one residue contact):

- Fnat: fraction of native residue contacts (any heavy-atom pair < 5 Å; 4 Å in CAPRI-peptide mode) that the
  model reproduces; the denominator counts every native contact, paired residues or not.
- iRMSD: backbone RMSD (N, CA, C, O; nucleic acids P, OP1, OP2, O2′–O5′, C1′–C5′) of the interface residues
  (any heavy atom < 10 Å of the partner in the reference; 8 Å between Cβ in peptide mode) after superposition.
- LRMSD: superpose the receptor (the chain with more reference residues; the second on a tie) on its
  backbone, then backbone RMSD of the ligand chain.
- DockQ = (Fnat + 1/(1+(iRMSD/1.5)²) + 1/(1+(LRMSD/8.5)²)) / 3; success is DockQ ≥ 0.23.

Residues are paired by sequence alignment (:mod:`analysis.metrics.correspondence`); chains by the mapping that
maximises the total DockQ over native interfaces (:mod:`analysis.metrics.chain_mapping`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import biotite.structure as struc
import numpy as np
from scipy.spatial import cKDTree

from analysis.metrics.chain_mapping import map_chains_by_score
from analysis.metrics.correspondence import (
    BACKBONE_ATOMS,
    Chain,
    CorrespondenceError,
    align_residues,
    polymer_chains,
)
from analysis.metrics.superpose import apply, kabsch, rmsd

SUCCESS_THRESHOLD = 0.23
FNAT_CUTOFF, FNAT_CUTOFF_PEPTIDE = 5.0, 4.0
INTERFACE_CUTOFF, INTERFACE_CUTOFF_PEPTIDE = 10.0, 8.0


def dockq_formula(fnat: float, irmsd: float, lrmsd: float) -> float:
    """DockQ from its three components (RMSDs in Å)."""
    return (fnat + 1.0 / (1.0 + (irmsd / 1.5) ** 2) + 1.0 / (1.0 + (lrmsd / 8.5) ** 2)) / 3.0


@dataclass(frozen=True)
class InterfaceScore:
    """DockQ components of one native interface; RMSDs in Å, contact counts in residue pairs."""

    ref_chains: tuple[str, str]
    model_chains: tuple[str | None, str | None]
    fnat: float
    fnonnat: float
    irmsd: float
    lrmsd: float
    dockq: float
    n_native_contacts: int
    n_model_contacts: int
    receptor: str

    @property
    def success(self) -> bool:
        return self.dockq >= SUCCESS_THRESHOLD


@dataclass
class DockQResult:
    """Scores of every native interface among the evaluated reference chains, under ``chain_map``."""

    interfaces: dict[tuple[str, str], InterfaceScore]
    chain_map: dict[str, str]
    unmapped: list[str] = field(default_factory=list)

    @property
    def total_dockq(self) -> float:
        return float(sum(s.dockq for s in self.interfaces.values()))

    @property
    def global_dockq(self) -> float:
        """Mean DockQ over native interfaces (DockQ v2's GlobalDockQ); NaN without interfaces."""
        return self.total_dockq / len(self.interfaces) if self.interfaces else float("nan")

    def interface(self, chain_a: str, chain_b: str) -> InterfaceScore:
        """The score of the native interface between two reference chains, in either order."""
        for key in ((chain_a, chain_b), (chain_b, chain_a)):
            if key in self.interfaces:
                return self.interfaces[key]
        raise CorrespondenceError(
            f"chains {chain_a} and {chain_b} form no native interface (interfaces: "
            f"{', '.join('-'.join(k) for k in self.interfaces) or 'none'})"
        )


def residue_distances(chain_a: Chain, chain_b: Chain, cutoff: float) -> np.ndarray:
    """(R_a, R_b) minimum heavy-atom distance (Å) between residues, ``inf`` where it exceeds ``cutoff``."""
    out = np.full((chain_a.n_residues, chain_b.n_residues), np.inf)
    tree_a = cKDTree(chain_a.atoms.coord.astype(np.float64))
    tree_b = cKDTree(chain_b.atoms.coord.astype(np.float64))
    pairs = tree_a.sparse_distance_matrix(tree_b, cutoff, output_type="ndarray")
    if len(pairs):
        np.minimum.at(out, (chain_a.residue_index[pairs["i"]], chain_b.residue_index[pairs["j"]]), pairs["v"])
    return out


def _representative_distances(chain_a: Chain, chain_b: Chain) -> np.ndarray:
    """(R_a, R_b) Cβ–Cβ distances (Cα for glycine or when Cβ is absent), as DockQ's peptide mode uses."""

    def points(chain: Chain) -> np.ndarray:
        coords = np.full((chain.n_residues, 3), np.nan)
        for name in ("CA", "CB"):  # CB overwrites CA where present
            hit = chain.atoms.atom_name == name
            coords[chain.residue_index[hit]] = chain.atoms.coord[hit]
        return coords

    a, b = points(chain_a), points(chain_b)
    return np.linalg.norm(a[:, None] - b[None], axis=-1)


def _backbone_pairs(
    ref: Chain, model: Chain, ref_res: np.ndarray, model_res: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) reference and model backbone coordinates of the given paired residues, atoms in both only."""
    model_lookup = {
        (int(r), str(n)): i
        for i, (r, n) in enumerate(zip(model.residue_index, model.atoms.atom_name, strict=True))
        if n in BACKBONE_ATOMS
    }
    wanted = np.zeros(ref.n_residues, dtype=np.int64) - 1
    wanted[ref_res] = model_res
    ref_idx, model_idx = [], []
    for i, (r, n) in enumerate(zip(ref.residue_index, ref.atoms.atom_name, strict=True)):
        if n in BACKBONE_ATOMS and wanted[r] >= 0:
            j = model_lookup.get((int(wanted[r]), str(n)))
            if j is not None:
                ref_idx.append(i)
                model_idx.append(j)
    return ref.atoms.coord[ref_idx].astype(np.float64), model.atoms.coord[model_idx].astype(np.float64)


class _InterfaceScorer:
    """Scores interfaces for candidate chain pairings, caching distance matrices and alignments."""

    def __init__(self, ref_chains: dict[str, Chain], model_chains: dict[str, Chain], capri_peptide: bool):
        self.ref, self.model = ref_chains, model_chains
        self.fnat_cutoff = FNAT_CUTOFF_PEPTIDE if capri_peptide else FNAT_CUTOFF
        self.interface_cutoff = INTERFACE_CUTOFF_PEPTIDE if capri_peptide else INTERFACE_CUTOFF
        self.capri_peptide = capri_peptide
        self._ref_dist: dict[tuple[str, str], np.ndarray] = {}
        self._model_dist: dict[tuple[str, str], np.ndarray] = {}
        self._alignment: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._scores: dict[tuple[str, str, str, str], InterfaceScore] = {}

    def ref_distances(self, a: str, b: str) -> np.ndarray:
        if (a, b) not in self._ref_dist:
            cutoff = max(self.fnat_cutoff, self.interface_cutoff)
            self._ref_dist[(a, b)] = residue_distances(self.ref[a], self.ref[b], cutoff)
        return self._ref_dist[(a, b)]

    def native_interfaces(self) -> list[tuple[str, str]]:
        return [
            (a, b)
            for a, b in itertools.combinations(self.ref, 2)
            if np.any(self.ref_distances(a, b) < self.fnat_cutoff)
        ]

    def alignment(self, ref_id: str, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        if (ref_id, model_id) not in self._alignment:
            self._alignment[(ref_id, model_id)] = align_residues(self.ref[ref_id], self.model[model_id])
        return self._alignment[(ref_id, model_id)]

    def model_distances(self, a: str, b: str) -> np.ndarray:
        if (a, b) not in self._model_dist:
            self._model_dist[(a, b)] = residue_distances(self.model[a], self.model[b], self.fnat_cutoff)
        return self._model_dist[(a, b)]

    def score(self, ref_a: str, ref_b: str, model_a: str | None, model_b: str | None) -> InterfaceScore:
        ref_dist = self.ref_distances(ref_a, ref_b)
        n_native = int(np.count_nonzero(ref_dist < self.fnat_cutoff))
        len_a, len_b = self.ref[ref_a].n_residues, self.ref[ref_b].n_residues
        receptor = ref_a if len_a > len_b else ref_b
        if model_a is None or model_b is None:
            return InterfaceScore(
                (ref_a, ref_b), (model_a, model_b), 0.0, 0.0, math.inf, math.inf, 0.0, n_native, 0, receptor
            )
        key = (ref_a, ref_b, model_a, model_b)
        if key not in self._scores:
            self._scores[key] = self._score(ref_a, ref_b, model_a, model_b, ref_dist, n_native, receptor)
        return self._scores[key]

    def _score(self, ref_a, ref_b, model_a, model_b, ref_dist, n_native, receptor) -> InterfaceScore:
        ref_res_a, model_res_a = self.alignment(ref_a, model_a)
        ref_res_b, model_res_b = self.alignment(ref_b, model_b)
        native = ref_dist[np.ix_(ref_res_a, ref_res_b)] < self.fnat_cutoff
        modelled = self.model_distances(model_a, model_b)[np.ix_(model_res_a, model_res_b)] < self.fnat_cutoff
        n_model = int(np.count_nonzero(modelled))
        fnat = np.count_nonzero(native & modelled) / n_native
        fnonnat = np.count_nonzero(modelled & ~native) / n_model if n_model else 0.0
        if self.capri_peptide:
            near = _representative_distances(self.ref[ref_a], self.ref[ref_b])
        else:
            near = ref_dist
        near = near[np.ix_(ref_res_a, ref_res_b)] < self.interface_cutoff
        rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
        iface_ref_a, iface_model_a = _backbone_pairs(
            self.ref[ref_a], self.model[model_a], ref_res_a[rows], model_res_a[rows]
        )
        iface_ref_b, iface_model_b = _backbone_pairs(
            self.ref[ref_b], self.model[model_b], ref_res_b[cols], model_res_b[cols]
        )
        iface_ref = np.concatenate([iface_ref_a, iface_ref_b])
        iface_model = np.concatenate([iface_model_a, iface_model_b])
        irmsd = math.inf
        if len(iface_ref):
            irmsd = rmsd(apply(iface_model, *kabsch(iface_model, iface_ref)), iface_ref)

        parts = {
            ref_a: _backbone_pairs(self.ref[ref_a], self.model[model_a], ref_res_a, model_res_a),
            ref_b: _backbone_pairs(self.ref[ref_b], self.model[model_b], ref_res_b, model_res_b),
        }
        ligand = ref_a if receptor == ref_b else ref_b
        (rec_ref, rec_model), (lig_ref, lig_model) = parts[receptor], parts[ligand]
        if len(rec_ref) and len(lig_ref):
            lrmsd = rmsd(apply(lig_model, *kabsch(rec_model, rec_ref)), lig_ref)
        else:
            lrmsd = math.inf
        return InterfaceScore(
            ref_chains=(ref_a, ref_b),
            model_chains=(model_a, model_b),
            fnat=float(fnat),
            fnonnat=float(fnonnat),
            irmsd=float(irmsd),
            lrmsd=float(lrmsd),
            dockq=dockq_formula(float(fnat), irmsd, lrmsd),
            n_native_contacts=n_native,
            n_model_contacts=n_model,
            receptor=receptor,
        )


def dockq(
    reference: struc.AtomArray,
    model: struc.AtomArray,
    *,
    chains: list[str] | None = None,
    chain_map: dict[str, str] | None = None,
    strict: bool = False,
    capri_peptide: bool = False,
) -> DockQResult:
    """DockQ v2 of every native interface among the reference polymer chains ``chains`` (default: all).

    ``chain_map`` (reference id → model id) fixes the mapping; otherwise it is chosen to maximise the total
    DockQ over native interfaces among chains of the same entity (``strict``: chain ids must match).
    Raises :class:`CorrespondenceError` when a requested reference chain does not exist.
    """
    ref_chains = polymer_chains(reference)
    if chains is not None:
        missing = [c for c in chains if c not in ref_chains]
        if missing:
            raise CorrespondenceError(
                f"reference has no polymer chain {', '.join(missing)} (has {', '.join(ref_chains)})"
            )
        ref_chains = {c: ref_chains[c] for c in chains}
    model_chains = polymer_chains(model)
    scorer = _InterfaceScorer(ref_chains, model_chains, capri_peptide)
    interfaces = scorer.native_interfaces()

    def total(mapping: dict[str, str]) -> float:
        return sum(scorer.score(a, b, mapping.get(a), mapping.get(b)).dockq for a, b in interfaces)

    if chain_map is None:
        chain_map = map_chains_by_score(ref_chains, model_chains, total, strict=strict)
    scores = {(a, b): scorer.score(a, b, chain_map.get(a), chain_map.get(b)) for a, b in interfaces}
    unmapped = [c for c in ref_chains if c not in chain_map]
    return DockQResult(scores, dict(chain_map), unmapped)
