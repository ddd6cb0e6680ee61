"""One training example from one structure file: parse, filter, tokenise and attach MSAs (the unit of work of
cache preparation, and what ``harness predict`` does to a structure given as input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.clusters import one_letter
from harness.data.constants import LIGAND, PROTEIN
from harness.data.errors import RecordError
from harness.data.filters import FilterConfig, apply_filters
from harness.data.msa import chain_msa, example_msa, msa_files_for
from harness.data.parse import read_structure
from harness.data.tokenize import tokenize


def build_example(
    path: str | Path,
    msa_dir: str | Path | None,
    *,
    predicted: bool = False,
    plddt_min: float | None = None,
    max_msa_rows: int = 1024,
    drop_crystallization_aids: bool = True,
    filters: FilterConfig | None = None,
):
    """Parse, filter, tokenise and attach MSAs: ``(structure, tokens, msa_rejects)``; ``tokens.arrays`` gains
    the MSA arrays. An MSA whose query disagrees with its chain is skipped (the entity stays query-only) and
    reported in ``msa_rejects``; a structure that cannot be used raises a ``RecordError`` naming the file
    (``FilteredError`` when a filter drops it)."""
    structure = read_structure(
        path, predicted=predicted, plddt_min=plddt_min, drop_crystallization_aids=drop_crystallization_aids,
        assembly=filters.bioassembly if filters is not None else None,
    )
    if filters is not None:
        structure = apply_filters(structure, filters)
    tokens = tokenize(structure)
    arrays = tokens.arrays
    rejects: list[dict] = []
    per_entity: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if msa_dir is not None:
        for chain in tokens.chains:
            if chain["mol_type"] == LIGAND or chain["entity_id"] in per_entity:
                continue
            sequence = one_letter("-".join(chain["sequence"])) if chain["mol_type"] == PROTEIN else None
            files = msa_files_for(Path(msa_dir), structure.entry_id, chain["auth_id"], sequence)
            if not files:
                continue
            query = arrays["restype"][chain["token_start"] : chain["token_end"]]
            try:
                per_entity[chain["entity_id"]] = chain_msa(files, query, chain["mol_type"], max_msa_rows)
            except RecordError as exc:
                rejects.append(
                    {
                        "path": exc.path,
                        "kind": exc.kind,
                        "reason": f"{exc.reason}; entry {structure.entry_id} chain {chain['auth_id']} "
                        "kept with a query-only MSA",
                    }
                )
    arrays.update(example_msa(arrays["restype"], arrays["asym_id"], tokens.chains, per_entity, max_msa_rows))
    return structure, tokens, rejects
