"""Training-set filters as in AF3 (SI §2.5.4), applied to a parsed :class:`~harness.data.parse.Structure`.

Entry-level filters drop the whole entry and raise :class:`FilteredError` whose ``kind`` names the reason
(``release_date``, ``resolution``, ``max_chains``, ``plddt_mean``, ``nonstandard``, ``no_chains``), so the
preparation report counts every drop by reason. Chain-level filters remove chains and keep the entry:
clashing chains, chains with too many unknown residues, polymer chains shorter than a minimum, and the AF3
"keep the N chains nearest a random chain" reduction of large assemblies. Every setting is recorded in the
cache manifest. Defaults filter nothing (the starter set keeps every example); :meth:`FilterConfig.af3`
gives AF3's values.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial import cKDTree

from harness.data.constants import LIGAND, STANDARD_RESIDUES
from harness.data.errors import RecordError
from harness.data.parse import Chain, Structure

UNKNOWN_RESIDUES = frozenset({"UNK", "N", "DN"})


class FilteredError(RecordError):
    """An entry removed by a configured filter; ``kind`` is the filter's name."""

    def __init__(self, path: str, kind: str, reason: str):
        super().__init__(path, reason)
        self.kind = kind


class FilterConfig(BaseModel):
    """Which entries and chains preparation keeps. ``None`` switches a filter off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release_date_max: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="drop entries released after this date (ISO)"
    )
    resolution_max: float | None = Field(None, gt=0, description="drop entries above this resolution (Å)")
    max_chains: int | None = Field(None, ge=1, description="chains kept per entry (AF3 training: 20)")
    max_chains_mode: Literal["nearest", "drop"] = Field(
        "nearest", description="nearest: keep the N chains nearest a random chain; drop: drop the entry"
    )
    min_polymer_length: int | None = Field(
        None, ge=1, description="remove polymer chains with fewer resolved residues (AF3: 4)"
    )
    max_unknown_fraction: float | None = Field(
        None, ge=0, le=1, description="remove polymer chains with a larger fraction of unknown residues"
    )
    clash_fraction: float | None = Field(
        None, gt=0, le=1, description="remove chains with more than this fraction of atoms clashing (AF3: 0.3)"
    )
    clash_distance: float = Field(1.7, gt=0, description="atoms closer than this (Å) to another chain clash")
    nonstandard: Literal["keep", "drop_entry"] = Field(
        "keep", description="keep: modified residues tokenised per atom; drop_entry: drop such entries"
    )
    plddt_mean_min: float | None = Field(
        None, ge=0, le=100, description="distillation: drop entries whose mean pLDDT is lower"
    )
    bioassembly: str | None = Field(
        None, min_length=1, description="expand this biological assembly before filtering (AF3: '1'); "
        "None keeps the asymmetric unit"
    )

    @classmethod
    def af3(cls, release_date_max: str | None = "2021-09-30", **overrides) -> FilterConfig:
        """AF3's training filters (SI §2.5.4) with its PDB cutoff date."""
        values = dict(
            release_date_max=release_date_max,
            resolution_max=9.0,
            max_chains=20,
            min_polymer_length=4,
            max_unknown_fraction=0.99,
            clash_fraction=0.3,
            bioassembly="1",
        )
        return cls(**(values | overrides))


def _chain_atoms(chain: Chain) -> np.ndarray:
    """(n, 3) float32 resolved atom positions of a chain (Å)."""
    pos = [p for r in chain.residues for p in r.atoms.values()]
    return np.asarray(pos, dtype=np.float32).reshape(-1, 3)


def _keep_chains(structure: Structure, keep: list[int]) -> Structure:
    """``structure`` restricted to chains ``keep`` (in order), bonds remapped, bonds to removed chains dropped."""
    new_index = {old: new for new, old in enumerate(keep)}
    bonds = [
        ((new_index[a[0]], a[1], a[2]), (new_index[b[0]], b[1], b[2]))
        for a, b in structure.bonds
        if a[0] in new_index and b[0] in new_index
    ]
    return replace(structure, chains=[structure.chains[i] for i in keep], bonds=bonds)


def clashing_chains(atoms: list[np.ndarray], distance: float, fraction: float) -> set[int]:
    """Chains to remove for clashes (AF3): a chain clashes when more than ``fraction`` of its atoms lie within
    ``distance`` of another chain's atoms; of two clashing chains the one with the larger clashing fraction
    goes (ties: fewer atoms, then the later chain)."""
    if len(atoms) < 2:
        return set()
    label = np.concatenate([np.full(len(a), i) for i, a in enumerate(atoms)])
    tree = cKDTree(np.concatenate(atoms))
    pairs = tree.query_pairs(distance, output_type="ndarray")
    pairs = pairs[label[pairs[:, 0]] != label[pairs[:, 1]]]
    removed: set[int] = set()
    if not len(pairs):
        return removed
    sizes = np.array([len(a) for a in atoms])
    # clash[i, j]: atoms of chain i within `distance` of chain j.
    clash = np.zeros((len(atoms), len(atoms)))
    for x, y in ((0, 1), (1, 0)):
        atom_pairs = np.unique(np.stack([pairs[:, x], label[pairs[:, y]]], axis=1), axis=0)
        np.add.at(clash, (label[atom_pairs[:, 0]], atom_pairs[:, 1]), 1)
    frac = clash / sizes[:, None]
    for i, j in sorted(zip(*np.nonzero(np.triu(clash + clash.T)), strict=True)):
        if i in removed or j in removed or max(frac[i, j], frac[j, i]) <= fraction:
            continue
        key_i, key_j = (frac[i, j], -sizes[i], i), (frac[j, i], -sizes[j], j)
        removed.add(int(i if key_i > key_j else j))
    return removed


def nearest_chains(atoms: list[np.ndarray], n: int, anchor: int) -> list[int]:
    """The ``n`` chains nearest chain ``anchor`` by minimum atom distance (the anchor first), in input order."""
    tree = cKDTree(atoms[anchor])
    dist = np.array([tree.query(a, k=1)[0].min() if len(a) else np.inf for a in atoms])
    dist[anchor] = -1.0
    return sorted(np.argsort(dist, kind="stable")[:n].tolist())


def apply_filters(structure: Structure, config: FilterConfig) -> Structure:
    """The structure after ``config``'s chain-level filters; FilteredError when the entry is dropped."""
    path, meta = structure.path, structure.meta
    if config.release_date_max and meta.get("release_date") and meta["release_date"] > config.release_date_max:
        raise FilteredError(path, "release_date", f"released {meta['release_date']} > {config.release_date_max}")
    resolution = meta.get("resolution")
    if config.resolution_max and resolution and resolution > config.resolution_max:
        raise FilteredError(path, "resolution", f"resolution {resolution:.2f} Å > {config.resolution_max} Å")
    if config.nonstandard == "drop_entry":
        odd = sorted(
            {r.name for c in structure.chains if c.mol_type != LIGAND for r in c.residues}
            - STANDARD_RESIDUES
        )
        if odd:
            raise FilteredError(path, "nonstandard", f"non-standard polymer residues {odd[:5]}")
    if config.plddt_mean_min is not None and structure.predicted:
        values = np.array([r.plddt for c in structure.chains for r in c.residues], dtype=np.float64)
        mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        if not mean >= config.plddt_mean_min:
            raise FilteredError(path, "plddt_mean", f"mean pLDDT {mean:.1f} < {config.plddt_mean_min}")
    keep = []
    for i, chain in enumerate(structure.chains):
        if chain.mol_type != LIGAND:
            resolved = sum(bool(r.atoms) for r in chain.residues)
            if config.min_polymer_length and resolved < config.min_polymer_length:
                continue
            unknown = sum(r.name in UNKNOWN_RESIDUES for r in chain.residues) / max(len(chain.residues), 1)
            if config.max_unknown_fraction is not None and unknown > config.max_unknown_fraction:
                continue
        keep.append(i)
    structure = _keep_chains(structure, keep)
    if config.clash_fraction is not None:
        atoms = [_chain_atoms(c) for c in structure.chains]
        gone = clashing_chains(atoms, config.clash_distance, config.clash_fraction)
        structure = _keep_chains(structure, [i for i in range(len(atoms)) if i not in gone])
    if config.max_chains and len(structure.chains) > config.max_chains:
        if config.max_chains_mode == "drop":
            raise FilteredError(
                path, "max_chains", f"{len(structure.chains)} chains > max_chains {config.max_chains}"
            )
        # Deterministic per entry, so two preparations of the same data give the same cache.
        seed = int(hashlib.sha256(structure.entry_id.encode()).hexdigest()[:8], 16)
        anchor = int(np.random.default_rng(seed).integers(len(structure.chains)))
        atoms = [_chain_atoms(c) for c in structure.chains]
        structure = _keep_chains(structure, nearest_chains(atoms, config.max_chains, anchor))
    if not structure.chains:
        raise FilteredError(path, "no_chains", "no chain left after the chain filters")
    return structure
