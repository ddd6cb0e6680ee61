"""FASTA fold inputs, in the two conventions users have.

- Boltz's: one record per chain, header ``>CHAIN_ID|ENTITY_TYPE[|MSA_PATH]`` with ENTITY_TYPE one of
  ``protein``, ``dna``, ``rna``, ``ccd`` (the sequence is a CCD code), ``smiles``; an MSA path (A3M, relative to
  the FASTA file; ``empty`` = query only) for proteins.
- Plain / ColabFold: ``>name`` headers hold protein sequences; ``:`` inside a sequence separates chains.
  Chains are named A, B, ... in order.
One file is one job, named after the file. Identical sequences of one type become copies of one entity.
"""

from __future__ import annotations

import itertools
import re
import string
from pathlib import Path

from harness.inputs.job import Entity, FoldInputError, FoldJob, read_msa_file

_TYPES = {"protein", "dna", "rna", "ccd", "smiles"}
_ALPHABETS = {"protein": set("ACDEFGHIKLMNPQRSTVWYXUBZO"), "dna": set("ACGTN"), "rna": set("ACGUN")}


def _records(path: Path) -> list[tuple[str, str, int]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise FoldInputError(path, f"not a readable text file ({exc})") from None
    records: list[tuple[str, str, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            records.append((line[1:].strip(), "", lineno))
        elif not records:
            raise FoldInputError(path, f"line {lineno}: sequence before the first '>' header")
        else:
            header, seq, at = records[-1]
            records[-1] = (header, seq + line, at)
    if not records:
        raise FoldInputError(path, "no FASTA records")
    return records


def _chain_names():
    for n in range(1, 3):
        for letters in itertools.product(string.ascii_uppercase, repeat=n):
            yield "".join(letters)


def read_fasta(path: Path) -> list[FoldJob]:
    records = _records(path)
    boltz = all("|" in header for header, _, _ in records)
    chains: list[tuple[str, str, str, str | None]] = []  # (chain id, kind, sequence, msa text)
    names = _chain_names()
    for header, seq, lineno in records:
        if not seq:
            raise FoldInputError(path, f"line {lineno}: record {header!r} has no sequence")
        if boltz:
            parts = header.split("|")
            cid, kind = parts[0].strip(), parts[1].strip().lower()
            if kind not in _TYPES:
                raise FoldInputError(path, f"line {lineno}: entity type {parts[1]!r} in header {header!r}; "
                                           f"expected one of {sorted(_TYPES)}")
            msa = None
            if len(parts) > 2 and parts[2].strip():
                msa = _msa(path, parts[2].strip(), lineno)
            chains.append((cid, kind, seq if kind == "smiles" else seq.upper(), msa))
        else:
            for part in seq.split(":"):
                chains.append((next(names), "protein", part.upper(), None))
    entities: dict[tuple[str, str, str | None], Entity] = {}
    for cid, kind, seq, msa in chains:
        if kind in _ALPHABETS:
            bad = sorted(set(seq) - _ALPHABETS[kind])
            if bad:
                raise FoldInputError(path, f"chain {cid}: {kind} sequence has letters {''.join(bad)!r}")
        key = (kind, seq, msa)
        if key in entities:
            entities[key].chain_ids.append(cid)
        elif kind == "ccd":
            entities[key] = Entity("ligand", [cid], ccd_codes=[seq.upper()])
        elif kind == "smiles":
            entities[key] = Entity("ligand", [cid], smiles=seq)
        else:
            entities[key] = Entity(kind, [cid], sequence=seq, msa_a3m=msa)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)
    return [FoldJob(name, str(path), list(entities.values()))]


def _msa(path: Path, value: str, lineno: int) -> str:
    return "" if value.lower() == "empty" else read_msa_file(path, path.parent, value, f"line {lineno}")
