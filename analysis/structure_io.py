"""Read predicted/reference structures into biotite ``AtomArray``s; write predictions as mmCIF + JSON.

Reading keeps what the metrics need: the first model, heavy atoms only (H/D dropped), no water, the first
alternate location, author residue numbers, chain ids as the caller chooses (``chain_ids="auth"``: author
``auth_asym_id``, the default; ``"label"``: ``label_asym_id``, what FoldBench's target lists and mmCIF-first tools
use; ligands then sit in chains of their own), and covalent bonds (intra-residue bonds from
the CCD, inter-residue bonds from ``struct_conn``) when the format carries them. Every user-caused
problem (missing file, unreadable or empty structure) raises :class:`StructureReadError` naming the file.

Writing (the output side of ``harness predict``): one mmCIF per sample with pLDDT (0-100) in the B-factor
column, plus a confidences JSON carrying the ranking score; :func:`prediction_paths` fixes the layout that
``harness eval`` reads back.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import biotite.structure as struc
import biotite.structure.io.pdb as pdb
import biotite.structure.io.pdbx as pdbx
import numpy as np

WATER_NAMES = frozenset({"HOH", "WAT", "DOD", "H2O"})
STRUCTURE_SUFFIXES = (".cif", ".cif.gz", ".mmcif", ".pdb", ".pdb.gz", ".ent", ".ent.gz", ".bcif")
AUTH, LABEL = "auth", "label"
CHAIN_ID_KINDS = (AUTH, LABEL)


class StructureReadError(ValueError):
    """A structure file is missing, unreadable, or holds no usable atoms."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _open_text(path: Path) -> io.StringIO:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        return io.StringIO(handle.read())


def is_mmcif(path: str | Path) -> bool:
    """Whether ``path`` names an mmCIF/BinaryCIF file (the formats that carry ``label_asym_id``)."""
    return Path(path).name.lower().removesuffix(".gz").endswith((".cif", ".mmcif", ".bcif"))


def _parse(path: Path, chain_ids: str) -> struc.AtomArray:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".cif", ".mmcif", ".bcif")):
        if name.endswith(".bcif"):
            file = pdbx.BinaryCIFFile.read(str(path))
        else:
            file = pdbx.CIFFile.read(_open_text(path))
        extra = ["b_factor"] + (["label_asym_id"] if chain_ids == LABEL else [])
        atoms = pdbx.get_structure(file, model=1, include_bonds=True, extra_fields=extra)
        if chain_ids == LABEL:
            atoms.chain_id = atoms.label_asym_id.astype(atoms.chain_id.dtype)
            atoms.del_annotation("label_asym_id")
        return atoms
    if chain_ids == LABEL:
        raise StructureReadError(path, "PDB-format files have no label_asym_id; use author chain ids (auth)")
    if name.endswith((".pdb", ".ent")):
        file = pdb.PDBFile.read(_open_text(path))
        atoms = pdb.get_structure(file, model=1, extra_fields=["b_factor"])
        # PDB files carry no CCD bonds; take them from the CCD by residue name.
        atoms.bonds = struc.connect_via_residue_names(atoms)
        return atoms
    raise StructureReadError(path, f"unknown structure format; expected one of {', '.join(STRUCTURE_SUFFIXES)}")


def read_structure(path: str | Path, chain_ids: str = AUTH) -> struc.AtomArray:
    """Read the first model of an mmCIF/BinaryCIF/PDB file (optionally gzipped) as a heavy-atom ``AtomArray``.

    ``chain_ids``: "auth" (author ids) or "label" (``label_asym_id``, mmCIF only).
    Returns an AtomArray of A atoms: ``coord`` (A, 3) in Å, annotations ``chain_id`` (as chosen), ``res_id``,
    ``ins_code``, ``res_name``, ``atom_name``, ``element``, ``hetero``, ``b_factor``; ``bonds`` when known.
    Raises :class:`StructureReadError` for a missing, unparsable or empty file.
    """
    path = Path(path)
    if chain_ids not in CHAIN_ID_KINDS:
        raise ValueError(f"chain_ids {chain_ids!r}: expected one of {', '.join(CHAIN_ID_KINDS)}")
    if not path.is_file():
        raise StructureReadError(path, "file not found")
    if path.stat().st_size == 0:
        raise StructureReadError(path, "file is empty")
    try:
        atoms = _parse(path, chain_ids)
    except StructureReadError:
        raise
    except Exception as err:  # any parser failure is the file's fault: report it as such
        raise StructureReadError(path, f"cannot parse structure ({type(err).__name__}: {err})") from err
    if isinstance(atoms, struc.AtomArrayStack):
        atoms = atoms[0]
    keep = ~np.isin(atoms.element, ["H", "D"]) & ~np.isin(atoms.res_name, list(WATER_NAMES))
    atoms = atoms[keep]
    if atoms.array_length() == 0:
        raise StructureReadError(path, "no heavy atoms outside water")
    if not np.all(np.isfinite(atoms.coord)):
        raise StructureReadError(path, "coordinates contain NaN or infinity")
    return atoms


def write_mmcif(atoms: struc.AtomArray, path: str | Path, plddt: np.ndarray | None = None) -> Path:
    """Write ``atoms`` to ``path`` (mmCIF; ``.gz`` suffix compresses) with per-atom pLDDT as B-factor.

    ``plddt``: (A,) in [0, 100]; absent → the array's ``b_factor`` annotation (or zeros). Bonds are written
    when the array has them, so ligand graphs survive a round trip.
    """
    path = Path(path)
    atoms = atoms.copy()
    n_atoms = atoms.array_length()
    if plddt is not None:
        plddt = np.asarray(plddt, dtype=np.float32)
        if plddt.shape != (n_atoms,):
            raise ValueError(f"plddt has shape {plddt.shape}, expected ({n_atoms},) for {path}")
        atoms.set_annotation("b_factor", plddt)
    elif "b_factor" not in atoms.get_annotation_categories():
        atoms.set_annotation("b_factor", np.zeros(n_atoms, dtype=np.float32))
    if "occupancy" not in atoms.get_annotation_categories():
        # Many readers (Biopython, DockQ) require the occupancy column.
        atoms.set_annotation("occupancy", np.ones(n_atoms, dtype=np.float32))
    file = pdbx.CIFFile()
    pdbx.set_structure(file, atoms)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    file.write(text)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt") as handle:
        handle.write(text.getvalue())
    return path


# ----------------------------------------------------------------------------------------------------
# Prediction outputs: the contract between ``harness predict`` (writer) and ``harness eval`` (reader).


@dataclass(frozen=True)
class PredictionPaths:
    structure: Path
    confidences: Path


def prediction_paths(predictions_dir: str | Path, target_id: str, sample: int) -> PredictionPaths:
    """Layout: ``{dir}/{target_id}/{target_id}_sample_{k}.cif`` and ``..._sample_{k}_confidences.json``."""
    base = Path(predictions_dir) / target_id / f"{target_id}_sample_{sample}"
    return PredictionPaths(base.with_suffix(".cif"), Path(f"{base}_confidences.json"))


def ranking_score(ptm: float, iptm: float | None, fraction_disordered: float = 0.0, has_clash: bool = False) -> float:
    """AF3 ranking score (SI §5.9.3): 0.8·ipTM + 0.2·pTM + 0.5·disorder − 100·has_clash.

    Monomers have no ipTM; AF3 then ranks by pTM, which is what passing ``iptm=None`` does.
    """
    base = ptm if iptm is None else 0.8 * iptm + 0.2 * ptm
    return float(base + 0.5 * fraction_disordered - 100.0 * float(has_clash))


def write_prediction(
    predictions_dir: str | Path,
    target_id: str,
    sample: int,
    atoms: struc.AtomArray,
    plddt: np.ndarray,
    *,
    ranking: float,
    seed: int | None = None,
    confidences: dict | None = None,
) -> PredictionPaths:
    """Write one sampled structure and its confidences; returns the two paths.

    ``plddt``: per-atom (A,) in [0, 100]. ``ranking``: the score top-1 selection maximises (higher is better),
    e.g. :func:`ranking_score`. ``confidences``: extra JSON-serialisable values (ptm, iptm, chain pTM).
    """
    if not math.isfinite(ranking):
        raise ValueError(f"ranking score for {target_id} sample {sample} is not finite: {ranking}")
    paths = prediction_paths(predictions_dir, target_id, sample)
    write_mmcif(atoms, paths.structure, plddt=plddt)
    payload = {
        "target_id": target_id,
        "sample": int(sample),
        "seed": seed,
        "ranking_score": float(ranking),
        "plddt_mean": float(np.mean(plddt)),
        **(confidences or {}),
    }
    paths.confidences.write_text(json.dumps(payload, indent=1, sort_keys=True))
    return paths
