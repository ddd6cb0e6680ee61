"""Which reader a fold-input file takes (AF3 JSON or FASTA), and the checks every job read passes."""

from __future__ import annotations

from pathlib import Path

from harness.inputs.af3_json import read_af3_json
from harness.inputs.fasta import read_fasta
from harness.inputs.job import FoldInputError, FoldJob

FOLD_JOB_SUFFIXES = (".json", ".fasta", ".fa", ".faa", ".fas")


def is_fold_job_file(path: Path) -> bool:
    return path.suffix.lower() in FOLD_JOB_SUFFIXES


def read_fold_jobs(path: str | Path) -> list[FoldJob]:
    """The jobs of an AF3 input JSON (``.json``: one job or a list) or a FASTA file (one job per file)."""
    path = Path(path)
    if not path.is_file():
        raise FoldInputError(path, "no such file")
    jobs = read_af3_json(path) if path.suffix.lower() == ".json" else read_fasta(path)
    for job in jobs:
        _check_chain_ids(job)
    return jobs


def _check_chain_ids(job: FoldJob) -> None:
    seen: set[str] = set()
    for cid in job.chain_ids:
        if cid in seen:
            raise FoldInputError(job.source, f"job {job.name!r}: chain id {cid!r} is used twice")
        seen.add(cid)
    for end in (end for bond in job.bonds for end in bond):
        if end[0] not in seen:
            raise FoldInputError(job.source, f"job {job.name!r}: bond names chain {end[0]!r}, which no entity has")
