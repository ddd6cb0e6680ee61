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


def _parse_a3m(text: str) -> tuple[list[str], list[str]]:
    """(sequences, headers) of an a3m file; headers without the leading ``>``."""
    seqs: list[str] = []
    headers: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            seqs.append("")
            headers.append(line[1:])
        elif seqs:
            seqs[-1] += line
    return seqs, headers


def _parse_sto(text: str) -> tuple[list[str], list[str]]:
    """Stockholm -> (a3m rows, headers): query gap columns become insertions (lower-case) in the other rows;
    a header is the row's name plus its ``#=GS <name> DE`` description (where UniProt puts ``OX=``)."""
    order: list[str] = []
    rows: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#=GS "):
            parts = line.split(maxsplit=3)
            if len(parts) == 4 and parts[2] == "DE":
                descriptions[parts[1]] = parts[3]
            continue
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
        return [], []
    aligned = ["".join(rows[n]) for n in order]
    query = np.frombuffer(aligned[0].encode(), np.uint8)
    match = (query != ord("-")) & (query != ord("."))
    out, headers = [], []
    for name, seq in zip(order, aligned, strict=True):
        arr = np.frombuffer(seq.encode(), np.uint8)
        if len(arr) != len(query):
            continue
        chars = np.where(match, np.char.upper(np.array(list(seq))), np.char.lower(np.array(list(seq))))
        keep = match | ((arr != ord("-")) & (arr != ord(".")))
        out.append("".join(chars[keep]).replace(".", "-"))
        headers.append(f"{name} {descriptions.get(name, '')}".strip())
    return out, headers


def read_msa(path: str | Path, mol_type: int = PROTEIN) -> tuple[np.ndarray, np.ndarray]:
    """Read one alignment file.

    Returns:
        msa: (S, L) int8 RESTYPES indices, row 0 the query (L = query length without insertions).
        deletions: (S, L) int32 number of insertions immediately before each column.
    """
    msa, deletions, _ = read_msa_with_species(path, mol_type)
    return msa, deletions


def read_msa_with_species(path: str | Path, mol_type: int = PROTEIN) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``read_msa`` plus the species of each row (``msa_pairing.species_of`` its header; ``""`` unknown)."""
    from harness.data.msa_pairing import species_of

    path = Path(path)
    text = _read_text(path)
    name = path.name.removesuffix(".gz")
    seqs, headers = _parse_sto(text) if name.endswith(".sto") else _parse_a3m(text)
    if not seqs:
        raise MSAError(path, "no sequences found")
    lut = _PROTEIN_LUT if mol_type == PROTEIN else _NUC_LUT[mol_type]
    rows, dels, species = [], [], []
    length = None
    for seq, header in zip(seqs, headers, strict=True):
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
        species.append(species_of(header) if rows[1:] else "")  # the query row pairs with nothing
    return np.stack(rows), np.stack(dels), species


def sequence_key(query: str) -> str:
    """Key of an alignment store: sha256 of the chain's one-letter sequence, first 16 hex digits."""
    import hashlib

    return hashlib.sha256(query.encode()).hexdigest()[:16]


def msa_files_for(msa_dir: Path, entry_id: str, chain_id: str, sequence: str | None = None) -> list[Path]:
    """MSA files of a chain: ``{msa_dir}/{entry}_{chain}/*``, ``{msa_dir}/{entry}_{chain}.a3m|.sto[.gz]``,
    else, given its one-letter ``sequence``, the alignment store's ``{msa_dir}/{sequence_key}/*`` or
    ``{msa_dir}/{sequence_key}.a3m|.sto[.gz]`` (identical chains of any entry share one file)."""
    candidates = []
    for stem in (f"{entry_id}_{chain_id}", None if sequence is None else sequence_key(sequence)):
        if stem is None:
            continue
        folder = msa_dir / stem
        candidates = sorted(folder.iterdir()) if folder.is_dir() else sorted(msa_dir.glob(stem + ".*"))
        if candidates:
            break
    return [
        p
        for p in candidates
        if p.name.removesuffix(".gz").endswith(MSA_SUFFIXES) and not p.name.startswith(TEMPLATE_FILE_NAMES)
    ]


def chain_msa(
    files: list[Path], query: np.ndarray, mol_type: int, max_rows: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Concatenate the alignments of one chain behind its query, dropping duplicate rows.

    Args:
        query: (L,) RESTYPES indices of the chain's entity sequence.
    Returns:
        msa (S, L) int8, deletions (S, L) int32, species of each row (``""`` unknown / query).
    Raises:
        MSAError: a file's query row differs from ``query``.
    """
    rows, dels = [query[None].astype(np.int8)], [np.zeros((1, len(query)), np.int32)]
    species = [""]
    for path in files:
        msa, deletions, row_species = read_msa_with_species(path, mol_type)
        if msa.shape[1] != len(query) or not np.array_equal(msa[0], query):
            raise MSAError(
                path,
                f"query of length {msa.shape[1]} does not match the chain sequence (length {len(query)})",
            )
        rows.append(msa[1:])
        dels.append(deletions[1:])
        species += row_species[1:]
    msa = np.concatenate(rows)
    deletions = np.concatenate(dels)
    _, first = np.unique(msa, axis=0, return_index=True)
    keep = np.sort(first)
    keep = np.concatenate([[0], keep[keep != 0]])[:max_rows]
    return msa[keep], deletions[keep], [species[i] for i in keep]


def example_msa(
    restype: np.ndarray,
    asym_id: np.ndarray,
    chains: list[dict],
    per_entity: dict[int, tuple],
    max_rows: int,
) -> dict[str, np.ndarray]:
    """Assemble an example's MSA arrays from per-entity alignments: the query row, then rows paired across
    entities by species (``msa_pairing.paired_rows``; only with two or more entities), then each entity's
    rows block-diagonally (unpaired).

    Args:
        restype: (N,) token RESTYPES; becomes row 0.
        per_entity: entity id -> (msa (S_e, L_e), deletions (S_e, L_e)[, species per row]) with row 0 the
            entity's query.
    Returns:
        msa (S, N) int8, msa_mask (S, N) bool, deletions (S, N) int32 counts,
        profile (N, 32) float32, deletion_mean (N,) float32 — profile/mean over the full (unsubsampled) MSA.
    """
    from harness.data.msa_pairing import paired_rows

    n = len(restype)
    pairs = paired_rows({e: v[2] for e, v in per_entity.items() if len(v) > 2})
    depth = 1 + len(pairs) + sum(v[0].shape[0] - 1 for v in per_entity.values())
    depth = min(depth, max_rows)
    msa = np.full((depth, n), GAP, dtype=np.int8)
    mask = np.zeros((depth, n), dtype=bool)
    deletions = np.zeros((depth, n), dtype=np.int32)
    msa[0] = restype
    mask[0] = True

    def columns(entity: int, width: int) -> list[slice]:
        # A chain holding per-atom tokens (modified residues) has more tokens than MSA columns: query-only.
        return [
            slice(c["token_start"], c["token_end"])
            for c in chains
            if c["entity_id"] == entity and c["token_end"] - c["token_start"] == width
        ]

    row = 1
    for pair in pairs[: depth - 1]:
        for entity, i in pair.items():
            m, d = per_entity[entity][:2]
            for cols in columns(entity, m.shape[1]):
                msa[row, cols], deletions[row, cols], mask[row, cols] = m[i], d[i], True
        row += 1
    for entity, value in per_entity.items():
        m, d = value[:2]
        take = min(m.shape[0] - 1, depth - row)
        if take <= 0:
            continue
        for cols in columns(entity, m.shape[1]):
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
