"""The model's input contract: every feature's name, shape and dtype (AF3 SI Table 5, simplified).

``harness.data`` produces these; ``models`` consumes them. Shapes are per example; a batch adds a leading
``B`` and pads ``N`` (tokens), ``A`` (atoms) and ``S`` (MSA rows) with zeros, recording what is real in the
``*_mask`` features. Symbols: N tokens, A atoms, S MSA rows (S >= 1, row 0 is the query).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Token residue types: 20 amino acids + UNK, 4 RNA + UNK, 4 DNA + UNK, gap (AF3: 32 classes).
RESTYPES = (  # noqa: SIM905 (one string reads better than 32 quoted names)
    "ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL UNK "
    "A G C U RN DA DG DC DT DN GAP"
).split()
N_RESTYPES = len(RESTYPES)  # 32
N_ELEMENTS = 128  # one-hot over atomic number (0 = unknown)
N_ATOM_NAME_CHARS = 4  # atom names padded to 4 characters
N_CHAR_CLASSES = 64  # ord(c) - 32, clipped to [0, 63]


@dataclass(frozen=True)
class FeatureSpec:
    shape: tuple[str, ...]
    dtype: torch.dtype
    doc: str


FEATURES: dict[str, FeatureSpec] = {
    # Token level.
    "token_mask": FeatureSpec(("N",), torch.bool, "real (not padding) tokens"),
    "residue_index": FeatureSpec(("N",), torch.long, "residue number within its chain (entity seq index)"),
    "token_index": FeatureSpec(("N",), torch.long, "token number within the example, 0..N-1"),
    "asym_id": FeatureSpec(("N",), torch.long, "chain id, unique per chain, 1-based (0 = padding)"),
    "entity_id": FeatureSpec(("N",), torch.long, "entity id, shared by chains of identical sequence"),
    "sym_id": FeatureSpec(("N",), torch.long, "copy number of the chain within its entity"),
    "restype": FeatureSpec(("N",), torch.long, "index into RESTYPES"),
    "is_protein": FeatureSpec(("N",), torch.bool, "token is an amino acid"),
    "is_rna": FeatureSpec(("N",), torch.bool, "token is an RNA nucleotide"),
    "is_dna": FeatureSpec(("N",), torch.bool, "token is a DNA nucleotide"),
    "is_ligand": FeatureSpec(("N",), torch.bool, "token is one atom of a ligand or modified residue"),
    "token_bonds": FeatureSpec(("N", "N"), torch.bool, "covalent bond between tokens (ligand/polymer-ligand)"),
    "token_center_atom": FeatureSpec(("N",), torch.long, "atom index of CA / C1' / the ligand atom"),
    "token_disto_atom": FeatureSpec(("N",), torch.long, "atom index of CB (CA for GLY) / C4 or C2 / the atom"),
    # MSA.
    "msa": FeatureSpec(("S", "N"), torch.long, "index into RESTYPES; row 0 is the query sequence"),
    "msa_mask": FeatureSpec(("S", "N"), torch.bool, "real MSA entries"),
    "has_deletion": FeatureSpec(("S", "N"), torch.float32, "1 where a deletion precedes the position"),
    "deletion_value": FeatureSpec(("S", "N"), torch.float32, "2/pi * arctan(deletions / 3)"),
    "profile": FeatureSpec(("N", "32"), torch.float32, "MSA column distribution over RESTYPES"),
    "deletion_mean": FeatureSpec(("N",), torch.float32, "mean deletion count per column"),
    # Atom level: reference conformer from the CCD.
    "atom_mask": FeatureSpec(("A",), torch.bool, "real (not padding) atoms"),
    "atom_to_token": FeatureSpec(("A",), torch.long, "token index of each atom"),
    "ref_pos": FeatureSpec(("A", "3"), torch.float32, "CCD ideal coordinates, centred per residue (Å)"),
    "ref_element": FeatureSpec(("A",), torch.long, "atomic number (0 unknown), < N_ELEMENTS"),
    "ref_charge": FeatureSpec(("A",), torch.float32, "formal charge"),
    "ref_atom_name_chars": FeatureSpec(("A", "4"), torch.long, "atom name characters, ord(c)-32"),
    "ref_space_uid": FeatureSpec(("A",), torch.long, "id of the residue/ligand whose conformer gave ref_pos"),
    # Ground truth.
    "gt_coords": FeatureSpec(("A", "3"), torch.float32, "experimental coordinates (Å)"),
    "gt_atom_mask": FeatureSpec(("A",), torch.bool, "atom resolved in the experiment"),
}


def check_example(features: dict[str, torch.Tensor], batched: bool = False) -> None:
    """Raise ValueError naming the first feature whose presence, rank, dtype or size disagrees with FEATURES."""
    sizes: dict[str, int] = {}
    offset = 1 if batched else 0
    for name, spec in FEATURES.items():
        if name not in features:
            raise ValueError(f"feature {name!r} is missing")
        t = features[name]
        if t.dtype != spec.dtype:
            raise ValueError(f"feature {name!r}: dtype {t.dtype}, expected {spec.dtype}")
        if t.dim() != len(spec.shape) + offset:
            raise ValueError(f"feature {name!r}: shape {tuple(t.shape)}, expected {spec.shape}")
        for dim, symbol in zip(t.shape[offset:], spec.shape, strict=True):
            if symbol.isdigit():
                if dim != int(symbol):
                    raise ValueError(f"feature {name!r}: size {dim} where {symbol} expected")
            elif sizes.setdefault(symbol, dim) != dim:
                raise ValueError(f"feature {name!r}: {symbol}={dim}, other features say {sizes[symbol]}")
