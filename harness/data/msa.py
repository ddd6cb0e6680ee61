"""MSAs: read ``.a3m`` / ``.sto`` (optionally ``.gz``) and build the per-example MSA features (AF3 SI §2.3).

One chain's alignment is an (S, L) matrix of RESTYPES indices plus an (S, L) matrix of deletion counts
(lower-case insertion letters before each match column). An example's MSA stacks, per entity, that
entity's rows on every copy of the entity (block-diagonal across entities, unpaired); row 0 is the query.
Without any MSA the example's MSA is the query row alone.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from harness.data.constants import DNA, GAP, PROTEIN, RESTYPE_INDEX, RNA, THREE_TO_ONE, UNK_PROTEIN
from harness.data.errors import MSAError

MSA_SUFFIXES = (".a3m", ".sto")
# Template hit alignments (hmmsearch against PDB seqres) are not sequence MSAs.
TEMPLATE_FILE_NAMES = ("hmm_output",)

_PROTEIN_LUT = np.full(256, UNK_PROTEIN, dtype=np.int8)
for _one, _three in zip("ARNDCQEGHILKMFPSTWYV", [v for v in THREE_TO_ONE], strict=True):
    _PROTEIN_LUT[ord(_one)] = RESTYPE_INDEX[_three]
_NUC_LUT = {RNA: np.full(256, RESTYPE_INDEX["RN"], np.int8), DNA: np.full(256, RESTYPE_INDEX["DN"], np.int8)}
for _c in "AGCU":
    _NUC_LUT[RNA][ord(_c)] = RESTYPE_INDEX[_c]
for _c in "AGCT":
    _NUC_LUT[DNA][ord(_c)] = RESTYPE_INDEX["D" + _c]
for _lut in (_PROTEIN_LUT, *_NUC_LUT.values()):
    _lut[ord("-")] = GAP
    _lut[ord(".")] = GAP


def _read_text(path: Path) -> str:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt") as fh:
                return fh.read()
        return path.read_text()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise MSAError(path, f"cannot read MSA file ({exc})") from exc


def _parse_a3m(text: str) -> list[str]:
    seqs: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            seqs.append("")
        elif seqs:
            seqs[-1] += line
    return seqs


def _parse_sto(text: str) -> list[str]:
    """Stockholm -> a3m rows: query gap columns become insertions (lower-case) in the other rows."""
    order: list[str] = []
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or line.startswith("//"):
            continue
        parts = line.split()
        if len(parts) != 2:
            continue
        name, chunk = parts
        if name not in rows:
            order.append(name)
            rows[name] = []
        rows[name].append(chunk)
    if not order:
        return []
    aligned = ["".join(rows[n]) for n in order]
    query = np.frombuffer(aligned[0].encode(), np.uint8)
    match = (query != ord("-")) & (query != ord("."))
    out = []
    for seq in aligned:
        arr = np.frombuffer(seq.encode(), np.uint8)
        if len(arr) != len(query):
            continue
        chars = np.where(match, np.char.upper(np.array(list(seq))), np.char.lower(np.array(list(seq))))
        keep = match | ((arr != ord("-")) & (arr != ord(".")))
        out.append("".join(chars[keep]).replace(".", "-"))
    return out


def read_msa(path: str | Path, mol_type: int = PROTEIN) -> tuple[np.ndarray, np.ndarray]:
    """Read one alignment file.

    Returns:
        msa: (S, L) int8 RESTYPES indices, row 0 the query (L = query length without insertions).
        deletions: (S, L) int32 number of insertions immediately before each column.
    """
    path = Path(path)
    text = _read_text(path)
    name = path.name.removesuffix(".gz")
    seqs = _parse_sto(text) if name.endswith(".sto") else _parse_a3m(text)
    if not seqs:
        raise MSAError(path, "no sequences found")
    lut = _PROTEIN_LUT if mol_type == PROTEIN else _NUC_LUT[mol_type]
    rows, dels = [], []
    length = None
    for seq in seqs:
        arr = np.frombuffer(seq.encode(), np.uint8)
        lower = (arr >= ord("a")) & (arr <= ord("z"))
        cols = arr[~lower]
        if length is None:
            length = len(cols)
        if len(cols) != length:
            continue  # malformed row: skip it rather than the whole alignment
        deletion_run = np.cumsum(lower)[~lower]
        deletions = np.diff(np.concatenate([[0], deletion_run]))
        rows.append(lut[cols])
        dels.append(deletions.astype(np.int32))
    return np.stack(rows), np.stack(dels)


def msa_files_for(msa_dir: Path, entry_id: str, chain_id: str) -> list[Path]:
    """MSA files of a chain: ``{msa_dir}/{entry}_{chain}/*``, ``{msa_dir}/{entry}_{chain}.a3m|.sto[.gz]``."""
    stem = f"{entry_id}_{chain_id}"
    candidates = []
    folder = msa_dir / stem
    if folder.is_dir():
        candidates = sorted(folder.iterdir())
    else:
        candidates = sorted(msa_dir.glob(stem + ".*"))
    return [
        p
        for p in candidates
        if p.name.removesuffix(".gz").endswith(MSA_SUFFIXES) and not p.name.startswith(TEMPLATE_FILE_NAMES)
    ]


def chain_msa(
    files: list[Path], query: np.ndarray, mol_type: int, max_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the alignments of one chain behind its query, dropping duplicate rows.

    Args:
        query: (L,) RESTYPES indices of the chain's entity sequence.
    Raises:
        MSAError: a file's query row differs from ``query``.
    """
    rows, dels = [query[None].astype(np.int8)], [np.zeros((1, len(query)), np.int32)]
    for path in files:
        msa, deletions = read_msa(path, mol_type)
        if msa.shape[1] != len(query) or not np.array_equal(msa[0], query):
            raise MSAError(
                path,
                f"query of length {msa.shape[1]} does not match the chain sequence (length {len(query)})",
            )
        rows.append(msa[1:])
        dels.append(deletions[1:])
    msa = np.concatenate(rows)
    deletions = np.concatenate(dels)
    _, first = np.unique(msa, axis=0, return_index=True)
    keep = np.sort(first)
    keep = np.concatenate([[0], keep[keep != 0]])[:max_rows]
    return msa[keep], deletions[keep]


def example_msa(
    restype: np.ndarray,
    asym_id: np.ndarray,
    chains: list[dict],
    per_entity: dict[int, tuple[np.ndarray, np.ndarray]],
    max_rows: int,
) -> dict[str, np.ndarray]:
    """Assemble an example's MSA arrays from per-entity alignments.

    Args:
        restype: (N,) token RESTYPES; becomes row 0.
        per_entity: entity id -> (msa (S_e, L_e), deletions (S_e, L_e)) with row 0 the entity's query.
    Returns:
        msa (S, N) int8, msa_mask (S, N) bool, deletions (S, N) int32 counts,
        profile (N, 32) float32, deletion_mean (N,) float32 — profile/mean over the full (unsubsampled) MSA.
    """
    n = len(restype)
    depth = 1 + sum(m.shape[0] - 1 for m, _ in per_entity.values())
    depth = min(depth, max_rows)
    msa = np.full((depth, n), GAP, dtype=np.int8)
    mask = np.zeros((depth, n), dtype=bool)
    deletions = np.zeros((depth, n), dtype=np.int32)
    msa[0] = restype
    mask[0] = True
    row = 1
    for entity, (m, d) in per_entity.items():
        take = min(m.shape[0] - 1, depth - row)
        if take <= 0:
            continue
        for chain in chains:
            if chain["entity_id"] != entity:
                continue
            cols = slice(chain["token_start"], chain["token_end"])
            if chain["token_end"] - chain["token_start"] != m.shape[1]:
                continue  # chain holds per-atom tokens (modified residues): leave it query-only
            msa[row : row + take, cols] = m[1 : 1 + take]
            deletions[row : row + take, cols] = d[1 : 1 + take]
            mask[row : row + take, cols] = True
        row += take
    onehot = np.zeros((n, 32), dtype=np.float32)
    for k in range(32):
        onehot[:, k] = (msa == k).sum(axis=0)
    profile = onehot / depth
    deletion_mean = deletions.mean(axis=0).astype(np.float32)
    return {
        "msa": msa,
        "msa_mask": mask,
        "deletions": deletions,
        "profile": profile,
        "deletion_mean": deletion_mean,
    }
