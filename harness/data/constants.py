"""Residue vocabularies and per-residue atom choices used by tokenisation (AF3 SI §2.6)."""

from __future__ import annotations

from models.features import RESTYPES

RESTYPE_INDEX: dict[str, int] = {name: i for i, name in enumerate(RESTYPES)}
UNK_PROTEIN = RESTYPE_INDEX["UNK"]
UNK_RNA = RESTYPE_INDEX["RN"]
UNK_DNA = RESTYPE_INDEX["DN"]
GAP = RESTYPE_INDEX["GAP"]

AMINO_ACIDS = tuple(RESTYPES[:20])
RNA_NUCLEOTIDES = ("A", "G", "C", "U")
DNA_NUCLEOTIDES = ("DA", "DG", "DC", "DT")

# One residue = one token for these codes; any other polymer residue is "modified" and tokenised per atom.
STANDARD_RESIDUES = frozenset(AMINO_ACIDS + ("UNK",) + RNA_NUCLEOTIDES + ("N",) + DNA_NUCLEOTIDES + ("DN",))

# Molecule types, stored per token (int8) in the cache.
PROTEIN, RNA, DNA, LIGAND = 0, 1, 2, 3
MOL_TYPE_NAMES = ("protein", "rna", "dna", "ligand")

ONE_LETTER_PROTEIN = dict(zip("ARNDCQEGHILKMFPSTWYV", AMINO_ACIDS, strict=True))
THREE_TO_ONE = {three: one for one, three in ONE_LETTER_PROTEIN.items()}

# AF3 converts selenomethionine to methionine before tokenising (SI §2.1).
MSE_TO_MET_ATOMS = {"SE": "SD"}

# Atoms dropped from polymer residues: leaving atoms of the peptide / phosphodiester bond (AF3 SI §2.8).
POLYMER_LEAVING_ATOMS = frozenset({"OXT", "OP3"})

PURINES = frozenset({"A", "G", "DA", "DG", "N", "DN"})

# Waters and unknown atoms/ligands are never tokenised (AF3 SI §2.5.4).
EXCLUDED_LIGANDS = frozenset({"HOH", "DOD", "WAT", "UNX", "UNL"})

# Crystallisation aids removed from PDB training examples (AF3 SI Table 9).
CRYSTALLIZATION_AIDS = frozenset(
    {
        "SO4",
        "GOL",
        "EDO",
        "PO4",
        "ACT",
        "PEG",
        "DMS",
        "TRS",
        "PGE",
        "PG4",
        "FMT",
        "EPE",
        "MPD",
        "MES",
        "CD",
        "IOD",
    }
)


def center_atom_name(res_name: str, mol_type: int) -> str:
    """Atom whose position represents a standard token: CA for amino acids, C1' for nucleotides."""
    return "CA" if mol_type == PROTEIN else "C1'"


def disto_atom_name(res_name: str, mol_type: int) -> str:
    """Distogram atom of a standard token: CB (CA for GLY), C4 for purines, C2 for pyrimidines."""
    if mol_type == PROTEIN:
        return "CA" if res_name == "GLY" else "CB"
    return "C4" if res_name in PURINES else "C2"


def restype_of(res_name: str, mol_type: int) -> int:
    """Index into RESTYPES of a standard residue code of a molecule type (unknowns -> UNK/RN/DN)."""
    if mol_type == PROTEIN:
        return RESTYPE_INDEX.get(res_name, UNK_PROTEIN)
    if mol_type == RNA:
        return RESTYPE_INDEX.get(res_name, UNK_RNA) if res_name in RNA_NUCLEOTIDES else UNK_RNA
    if mol_type == DNA:
        return RESTYPE_INDEX.get(res_name, UNK_DNA) if res_name in DNA_NUCLEOTIDES else UNK_DNA
    return UNK_PROTEIN  # ligands are "unknown amino acid" (AF3 SI Table 5)
