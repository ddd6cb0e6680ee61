"""The fold-job model shared by the input readers: entities (polymers, ligands), their chain ids, bonds, seeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.errors import HarnessError

EntityKind = Literal["protein", "rna", "dna", "ligand"]


class FoldInputError(HarnessError):
    """A fold input (AF3 JSON, FASTA) that cannot be used; names the file and the entry or key at fault."""

    def __init__(self, source: str | Path, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{source}: {problem}")


@dataclass
class Entity:
    """One molecule of the job, present as ``len(chain_ids)`` copies.

    Attributes:
        kind: protein | rna | dna | ligand.
        chain_ids: the chain id of every copy (AF3 ``id``), unique within the job.
        sequence: one-letter polymer sequence (empty for ligands).
        modifications: (1-based position, CCD code) replacing the residue at that position.
        ccd_codes: ligand made of these CCD components (several for a glycan), or empty.
        smiles: ligand given as SMILES (its conformer comes from RDKit), or None.
        msa_a3m: the entity's unpaired MSA as A3M text ("" = query only; None = look it up in the MSA folder).
    """

    kind: EntityKind
    chain_ids: list[str]
    sequence: str = ""
    modifications: list[tuple[int, str]] = field(default_factory=list)
    ccd_codes: list[str] = field(default_factory=list)
    smiles: str | None = None
    msa_a3m: str | None = None


@dataclass
class FoldJob:
    """One prediction target. ``bonds``: ((chain id, 1-based residue, atom name), (same)) covalent links."""

    name: str
    source: str
    entities: list[Entity]
    bonds: list[tuple[tuple[str, int, str], tuple[str, int, str]]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # input parts read but not used, shown with the prediction

    @property
    def chain_ids(self) -> list[str]:
        return [c for e in self.entities for c in e.chain_ids]


def read_msa_file(source: str | Path, base: Path, value: str, where: str) -> str:
    """Text of an MSA file that a fold input names (``value`` relative to the input's folder; ``.gz`` ok)."""
    from harness.data.msa import _read_text

    file = (base / value).expanduser()
    if not file.is_file():
        raise FoldInputError(source, f"{where}: MSA file {value!r} not found (looked for {file})")
    return _read_text(file)
