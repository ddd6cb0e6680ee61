"""The SeedFold paper's published numbers, as data (docs/DESIGN.md §1.4, §3, §5).

Source tags follow docs/DESIGN.md §3: [P] the authors' own material, [R] the review. Tables in ``analysis.tables`` put
measured numbers beside these rows; nothing here is ever computed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperConfig:
    """One row of the paper's width-vs-depth table."""

    name: str
    axis: str  # "width" | "deeper Pairformer" | "deeper structure module"
    c_z: int
    c_m: int
    n_pairformer_blocks: int
    n_diffusion_blocks: int
    params: float  # total parameters [P]
    iter_per_s: float  # training iterations per second [R]; hardware and batch not stated


WIDTH_VS_DEPTH: tuple[PaperConfig, ...] = (
    PaperConfig("base", "width", 128, 64, 48, 24, 432e6, 0.15),
    PaperConfig("medium", "width", 256, 128, 48, 24, 533e6, 0.10),
    PaperConfig("large", "width", 512, 256, 48, 24, 923e6, 0.06),
    PaperConfig("deep_pairformer", "deeper Pairformer", 128, 64, 96, 24, 582e6, 0.10),
    PaperConfig("deep_structure", "deeper structure module", 128, 64, 48, 48, 706e6, 0.10),
)

# FoldBench categories in the published order; interface and ligand columns are success rates in percent.
FOLDBENCH_COLUMNS: tuple[str, ...] = (
    "monomer_lddt", "protein_protein", "antibody_antigen", "protein_ligand", "protein_rna", "protein_dna",
)
FOLDBENCH_LABELS: dict[str, str] = {
    "monomer_lddt": "monomer lDDT",
    "protein_protein": "prot–prot (%)",
    "antibody_antigen": "Ab–Ag (%)",
    "protein_ligand": "prot–lig (%)",
    "protein_rna": "prot–RNA (%)",
    "protein_dna": "prot–DNA (%)",
    "protein_peptide": "prot–pep (%)",
}

FOLDBENCH: dict[str, dict[str, float]] = {
    "AlphaFold 3": dict(zip(FOLDBENCH_COLUMNS, (0.88, 72.93, 47.90, 64.90, 62.32, 79.18), strict=True)),
    "Boltz-1": dict(zip(FOLDBENCH_COLUMNS, (0.87, 68.25, 33.54, 55.04, 56.90, 70.97), strict=True)),
    "Chai-1": dict(zip(FOLDBENCH_COLUMNS, (0.87, 68.53, 23.64, 51.23, 50.91, 69.97), strict=True)),
    "Protenix-0.5": dict(zip(FOLDBENCH_COLUMNS, (0.8773, 71.50, 41.00, 62.30, 50.70, 71.38), strict=True)),
    "SeedFold": dict(zip(FOLDBENCH_COLUMNS, (0.8889, 74.03, 53.21, 63.12, 65.31, 72.60), strict=True)),
    "SeedFold-Linear": dict(zip(FOLDBENCH_COLUMNS, (0.8861, 74.14, 46.91, 66.48, 61.80, 76.00), strict=True)),
}

# Published flash-style triangle attention forward times (trifast, A100, bf16, H=4, d=32), ms, by n_tokens.
TRIFAST_FORWARD_MS: dict[int, float] = {512: 1.15, 1024: 8.45, 2048: 66.8}
# Memory of the naive (B, H, N, N, N) logits tensor in bf16 at H=4, GB, by n_tokens.
NAIVE_LOGITS_GB: dict[int, float] = {512: 1.07, 1024: 8.6, 2048: 69.0}


def paper_config(name: str) -> PaperConfig | None:
    """The paper row called ``name`` (``base``, ``medium``, ...), or None."""
    return next((c for c in WIDTH_VS_DEPTH if c.name == name), None)
