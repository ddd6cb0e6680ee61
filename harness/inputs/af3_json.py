"""AlphaFold3 input JSON (``dialect: alphafold3``, versions 1-4), as documented in AF3's ``docs/input.md``.

Read: ``name``, ``modelSeeds``, ``sequences`` (``protein``/``rna``/``dna`` with ``id``, ``sequence``,
``modifications``, ``unpairedMsa``/``unpairedMsaPath``, ``pairedMsa``/``pairedMsaPath``, ``templates``;
``ligand`` with ``ccdCodes`` or ``smiles``), ``bondedAtomPairs``. MSA paths are relative to the JSON file.
Not supported (rejected with the key named): ``userCCD``/``userCCDPath`` (give such ligands as SMILES) and the
AlphaFold Server dialect. Read but not used, and said so in the prediction's confidences JSON: ``templates``
(the model has no template features); ``pairedMsa`` rows join the unpaired ones (MSAs are not paired here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.config_files import parse_config
from harness.inputs.job import Entity, FoldInputError, FoldJob, read_msa_file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProteinModification(_Strict):
    ptmType: str = Field(min_length=1, max_length=5)
    ptmPosition: int = Field(ge=1)


class NucleicModification(_Strict):
    modificationType: str = Field(min_length=1, max_length=5)
    basePosition: int = Field(ge=1)


class _Polymer(_Strict):
    id: str | list[str]
    sequence: str = Field(min_length=1)
    unpairedMsa: str | None = None
    unpairedMsaPath: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_msa_source(self):
        if self.unpairedMsa is not None and self.unpairedMsaPath is not None:
            raise ValueError("give unpairedMsa or unpairedMsaPath, not both")
        return self


class Protein(_Polymer):
    modifications: list[ProteinModification] = Field(default_factory=list)
    pairedMsa: str | None = None
    pairedMsaPath: str | None = None
    templates: list[dict[str, Any]] | None = None


class RNA(_Polymer):
    modifications: list[NucleicModification] = Field(default_factory=list)


class DNA(_Strict):
    id: str | list[str]
    sequence: str = Field(min_length=1)
    modifications: list[NucleicModification] = Field(default_factory=list)
    description: str | None = None


class Ligand(_Strict):
    id: str | list[str]
    ccdCodes: list[str] | None = Field(None, min_length=1)
    smiles: str | None = Field(None, min_length=1)
    description: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.ccdCodes is None) == (self.smiles is None):
            raise ValueError("a ligand needs exactly one of ccdCodes and smiles")
        return self


class SequenceEntry(_Strict):
    protein: Protein | None = None
    rna: RNA | None = None
    dna: DNA | None = None
    ligand: Ligand | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in ("protein", "rna", "dna", "ligand") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"each sequences entry holds exactly one of protein, rna, dna, ligand (got {given})")
        return self


AtomRef = tuple[str, int, str]


class AF3Job(_Strict):
    dialect: Literal["alphafold3"]
    version: int = Field(ge=1, le=4)
    name: str = Field(min_length=1)
    modelSeeds: list[int] = Field(min_length=1)
    sequences: list[SequenceEntry] = Field(min_length=1)
    bondedAtomPairs: list[tuple[AtomRef, AtomRef]] | None = None
    userCCD: str | None = None
    userCCDPath: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _no_user_ccd(self):
        if self.userCCD or self.userCCDPath:
            raise ValueError("userCCD/userCCDPath are not supported: give such ligands as smiles")
        return self


def _ids(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _msa_text(inline: str | None, path: str | None, base: Path, source: Path, where: str) -> str | None:
    return inline if path is None else read_msa_file(source, base, path, where)


def _entity(entry: SequenceEntry, base: Path, source: Path, where: str, notes: list[str]) -> Entity:
    if entry.ligand is not None:
        lig = entry.ligand
        return Entity("ligand", _ids(lig.id), ccd_codes=[c.upper() for c in lig.ccdCodes or []], smiles=lig.smiles)
    kind = next(k for k in ("protein", "rna", "dna") if getattr(entry, k) is not None)
    poly = getattr(entry, kind)
    if kind == "protein":
        mods = [(m.ptmPosition, m.ptmType.upper()) for m in poly.modifications]
    else:
        mods = [(m.basePosition, m.modificationType.upper()) for m in poly.modifications]
    for pos, code in mods:
        if pos > len(poly.sequence):
            raise FoldInputError(source, f"{where}: modification {code} at position {pos} is past the sequence "
                                         f"end ({len(poly.sequence)})")
    msa = None
    if kind != "dna":
        msa = _msa_text(poly.unpairedMsa, poly.unpairedMsaPath, base, source, f"{where}.unpairedMsaPath")
    if kind == "protein":
        paired = _msa_text(poly.pairedMsa, poly.pairedMsaPath, base, source, f"{where}.pairedMsaPath")
        if paired:
            msa = (msa or "") + ("\n" if msa else "") + paired
            notes.append(f"{where}: pairedMsa rows used as unpaired rows (MSAs are not paired by this model)")
        if poly.templates:
            notes.append(f"{where}: {len(poly.templates)} templates ignored (the model has no template features)")
    return Entity(kind, _ids(poly.id), sequence=poly.sequence.upper(), modifications=mods, msa_a3m=msa)


def read_af3_json(path: Path) -> list[FoldJob]:
    """Every job of an AF3 input JSON file: one object, or a list of them."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FoldInputError(path, f"not a readable JSON file ({exc})") from None
    items = raw if isinstance(raw, list) else [raw]
    jobs = []
    for k, item in enumerate(items):
        source = f"{path}[{k}]" if isinstance(raw, list) else str(path)
        if isinstance(item, dict) and item.get("dialect") == "alphafoldserver":
            raise FoldInputError(source, "the AlphaFold Server dialect is not supported; use dialect alphafold3")
        job: AF3Job = parse_config(AF3Job, item, source)
        notes: list[str] = []
        entities = [_entity(e, path.parent, path, f"sequences[{i}]", notes) for i, e in enumerate(job.sequences)]
        bonds = [tuple((c, int(r), a) for c, r, a in pair) for pair in job.bondedAtomPairs or []]
        jobs.append(FoldJob(job.name, source, entities, bonds, list(job.modelSeeds), notes))
    return jobs
