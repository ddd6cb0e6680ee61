"""A :class:`FoldJob` → the ``Structure`` that tokenisation reads, and its per-chain MSAs.

Every residue is unresolved (no ground truth); chains, entities, modifications, ligands and bonds are what the
job states. From here ``harness predict`` runs the training pipeline's ``tokenize`` and ``featurize`` unchanged.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data.ccd import component
from harness.data.constants import DNA, LIGAND, ONE_LETTER_PROTEIN, PROTEIN, RNA
from harness.data.errors import RecordError
from harness.data.msa import chain_msa, example_msa, msa_files_for
from harness.data.parse import Chain, Residue, Structure
from harness.data.tokenize import Tokens, tokenize
from harness.inputs.job import Entity, FoldInputError, FoldJob
from harness.inputs.smiles import smiles_component

_MOL_TYPE = {"protein": PROTEIN, "rna": RNA, "dna": DNA, "ligand": LIGAND}
_DNA = {"A": "DA", "C": "DC", "G": "DG", "T": "DT", "N": "DN"}
_RNA = {"A": "A", "C": "C", "G": "G", "U": "U", "N": "N"}


@dataclass
class AssembledJob:
    """A job ready to featurise: its structure, tokens with MSA arrays, and what the MSA step did per chain."""

    job: FoldJob
    structure: Structure
    tokens: Tokens
    msa_sources: dict[str, str]  # chain id -> "inline" | file list | "query only"


def _residue_names(entity: Entity) -> list[str]:
    if entity.kind == "protein":
        names = [ONE_LETTER_PROTEIN.get(c, "UNK") for c in entity.sequence]
    else:
        table = _DNA if entity.kind == "dna" else _RNA
        names = [table.get(c, "DN" if entity.kind == "dna" else "N") for c in entity.sequence]
    for pos, code in entity.modifications:
        names[pos - 1] = code
    return names


def _chains(job: FoldJob) -> tuple[list[Chain], dict]:
    chains, components = [], {}
    for k, entity in enumerate(job.entities):
        mol_type = _MOL_TYPE[entity.kind]
        if entity.smiles is not None:
            code = f"LIG{k + 1}"
            components[code] = smiles_component(entity.smiles, code, job.source)
            names, key = [code], f"smiles:{entity.smiles}"
        elif entity.kind == "ligand":
            names, key = entity.ccd_codes, "ligand:" + "+".join(entity.ccd_codes)
        else:
            names = _residue_names(entity)
            key = f"poly:{entity.kind}:" + "-".join(names)
        for code in set(names) - set(components):
            try:
                component(code, job.source)
            except RecordError as exc:
                raise FoldInputError(job.source, f"chain {entity.chain_ids[0]}: {exc.reason}") from None
        for cid in entity.chain_ids:
            residues = [Residue(name, i + 1) for i, name in enumerate(names)]
            chains.append(Chain(cid, cid, key, mol_type, residues))
    return chains, components


def _bonds(job: FoldJob, chains: list[Chain], components: dict) -> list:
    index = {c.auth_id: i for i, c in enumerate(chains)}
    bonds = []
    for pair in job.bonds:
        ends = []
        for cid, res, atom in pair:
            chain = chains[index[cid]]
            if not 1 <= res <= len(chain.residues):
                raise FoldInputError(job.source, f"bond end ({cid}, {res}, {atom}): chain {cid} has residues "
                                                 f"1..{len(chain.residues)}")
            name = chain.residues[res - 1].name
            comp = components.get(name) or component(name, job.source)
            if atom not in set(comp.atom_names):
                raise FoldInputError(job.source, f"bond end ({cid}, {res}, {atom}): {name} has no heavy atom "
                                                 f"{atom!r}")
            ends.append((index[cid], res - 1, atom))
        bonds.append((ends[0], ends[1]))
    return bonds


def _entity_msa(entity: Entity, query: np.ndarray, job: FoldJob, msa_dir: Path | None, max_rows: int):
    """(msa, deletions) of one polymer entity, or None for query only; and where it came from."""
    cid = entity.chain_ids[0]
    files: list[Path] = []
    if entity.msa_a3m is None:
        if msa_dir is not None:
            files = msa_files_for(Path(msa_dir), job.name, cid)
        origin = ", ".join(p.name for p in files) if files else "query only"
    else:
        origin = "inline" if entity.msa_a3m else "query only"
    if entity.msa_a3m:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{cid}.a3m"
            path.write_text(entity.msa_a3m)
            return _read(entity, [path], query, job, max_rows), origin
    if files:
        return _read(entity, files, query, job, max_rows), origin
    return None, origin


def _read(entity: Entity, files: list[Path], query: np.ndarray, job: FoldJob, max_rows: int):
    try:
        return chain_msa(files, query, _MOL_TYPE[entity.kind], max_rows)
    except RecordError as exc:
        raise FoldInputError(job.source, f"chain {entity.chain_ids[0]} MSA: {exc.reason}") from None


def assemble(job: FoldJob, *, msa_dir: Path | None = None, max_msa_rows: int = 1024) -> AssembledJob:
    """Build the job's structure and tokens; MSAs from the job (inline/paths) or ``msa_dir`` (named
    ``{job name}_{chain id}`` as ``harness data`` lays them out), else query only."""
    chains, components = _chains(job)
    structure = Structure(job.name, job.source, chains, _bonds(job, chains, components), components=components)
    tokens = tokenize(structure)
    arrays = tokens.arrays
    per_entity, sources = {}, {}
    by_chain = {c["auth_id"]: c for c in tokens.chains}
    for entity in job.entities:
        if entity.kind not in ("protein", "rna"):
            sources |= {cid: "query only" for cid in entity.chain_ids}
            continue
        meta = by_chain[entity.chain_ids[0]]
        query = arrays["restype"][meta["token_start"] : meta["token_end"]]
        msa, origin = _entity_msa(entity, query, job, msa_dir, max_msa_rows)
        if msa is not None:
            per_entity[meta["entity_id"]] = msa
        sources |= {cid: origin for cid in entity.chain_ids}
    arrays.update(example_msa(arrays["restype"], arrays["asym_id"], tokens.chains, per_entity, max_msa_rows))
    return AssembledJob(job, structure, tokens, sources)
