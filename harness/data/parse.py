"""Read one mmCIF/PDB file (plain or gzipped) into chains of residues with resolved heavy-atom coordinates.

Conventions (AF3 SI §2.1, §2.5): first model only; first altloc; hydrogens and waters dropped; atoms with
zero occupancy count as unresolved. Polymer chains follow their *entity* sequence, so residues missing from
the model are kept (with no resolved atoms). Selenomethionine becomes methionine. Predicted structures
(AFDB/MGnify-style distillation files) carry pLDDT in the B-factor column; residues under ``plddt_min``
are marked unresolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gemmi
import numpy as np

from harness.data.constants import (
    CRYSTALLIZATION_AIDS,
    DNA,
    EXCLUDED_LIGANDS,
    LIGAND,
    MSE_TO_MET_ATOMS,
    PROTEIN,
    RNA,
)
from harness.data.errors import DataPathError, EmptyChainError, PLDDTFilterError, StructureParseError

STRUCTURE_SUFFIXES = (".cif", ".mmcif", ".pdb", ".ent")

_POLYMER_TYPES = {
    gemmi.PolymerType.PeptideL: PROTEIN,
    gemmi.PolymerType.PeptideD: PROTEIN,
    gemmi.PolymerType.Dna: DNA,
    gemmi.PolymerType.Rna: RNA,
    gemmi.PolymerType.DnaRnaHybrid: DNA,
}


@dataclass
class Residue:
    """One residue position. ``atoms`` maps atom name -> (3,) float32 position in Å (resolved atoms only)."""

    name: str
    seq_pos: int
    atoms: dict[str, np.ndarray] = field(default_factory=dict)
    plddt: float = float("nan")


@dataclass
class Chain:
    """A polymer chain (full entity sequence) or a single ligand / glycan instance."""

    auth_id: str
    label_id: str
    entity_key: str
    mol_type: int
    residues: list[Residue]

    @property
    def sequence(self) -> list[str]:
        return [r.name for r in self.residues]


@dataclass
class Structure:
    """A parsed entry. ``bonds`` are covalent links ((chain, residue, atom), (chain, residue, atom)) from
    ``struct_conn``/``LINK`` records, by index into ``chains`` and ``chains[c].residues``. ``components``: reference
    conformers for residue names that are not CCD codes (ligands given as SMILES), by name."""

    entry_id: str
    path: str
    chains: list[Chain]
    bonds: list[tuple[tuple[int, int, str], tuple[int, int, str]]]
    predicted: bool = False
    components: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # release_date (ISO str), resolution (Å), method; None if unknown


def entry_id_of(path: Path) -> str:
    """``/x/1ABC.cif.gz`` -> ``1abc``: the file name without structure/compression suffixes, lower-cased.

    PDB-mirror names ``pdb1abc.ent.gz`` give ``1abc``; AFDB ``AF-P69905-F1-model_v4.cif`` gives
    ``af-p69905-f1-model_v4``; MGnify-style ``MGYP000123.pdb`` gives ``mgyp000123``."""
    name = path.name
    ent = name.lower().endswith((".ent", ".ent.gz"))
    for suffix in (".gz",) + STRUCTURE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    name = name.lower()
    if ent and len(name) == 7 and name.startswith("pdb"):
        name = name[3:]
    return name


def is_structure_file(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return path.is_file() and name.endswith(STRUCTURE_SUFFIXES)


def _read_gemmi(path: Path) -> gemmi.Structure:
    if not path.exists():
        raise DataPathError(path, "structure file does not exist")
    if path.is_dir():
        raise DataPathError(path, "expected a structure file, found a folder")
    if not is_structure_file(path):
        raise StructureParseError(
            path, f"unsupported file type; expected one of {STRUCTURE_SUFFIXES} (+ .gz)"
        )
    if path.stat().st_size == 0:
        raise StructureParseError(path, "empty file")
    release_date = None
    try:
        if path.name.lower().removesuffix(".gz").endswith((".cif", ".mmcif")):
            # Read the block ourselves: the release date lives outside what gemmi.Structure keeps.
            block = gemmi.cif.read(str(path)).sole_block()
            dates = [d for d in block.find_values("_pdbx_audit_revision_history.revision_date") if d[:1].isdigit()]
            release_date = min(dates) if dates else None
            st = gemmi.make_structure_from_block(block)
            st.merge_chain_parts()
        else:
            st = gemmi.read_structure(str(path), merge_chain_parts=True)
    except (RuntimeError, ValueError, OSError, EOFError) as exc:
        raise StructureParseError(path, f"not a readable mmCIF/PDB file ({exc})") from exc
    st.info["_harness.release_date"] = release_date or ""
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise StructureParseError(path, "no atoms in the first model (empty, truncated or not a structure)")
    for i in range(len(st) - 1, 0, -1):
        del st[i]
    st.remove_alternative_conformations()
    st.remove_hydrogens()
    st.remove_waters()
    st.setup_entities()
    if st.input_format != gemmi.CoorFormat.Mmcif:
        st.assign_label_seq_id(False)
    return st


def _residue_atoms(res: gemmi.Residue) -> tuple[dict[str, np.ndarray], list[float]]:
    atoms: dict[str, np.ndarray] = {}
    b_factors = []
    rename = MSE_TO_MET_ATOMS if res.name == "MSE" else {}
    for atom in res:
        if atom.occ <= 0 or atom.name in atoms:
            continue
        p = atom.pos
        atoms[rename.get(atom.name, atom.name)] = np.array((p.x, p.y, p.z), dtype=np.float32)
        b_factors.append(atom.b_iso)
    return atoms, b_factors


def _polymer_chain(
    path: Path, st: gemmi.Structure, ch: gemmi.Chain, sub: gemmi.ResidueSpan, entity: gemmi.Entity
) -> tuple[Chain, list[gemmi.Residue]]:
    mol_type = _POLYMER_TYPES.get(entity.polymer_type, PROTEIN)
    full = [gemmi.Entity.first_mon(m) for m in entity.full_sequence]
    observed = [r for r in sub]
    use_label = bool(full) and all(
        r.label_seq is not None and 1 <= r.label_seq <= len(full) for r in observed
    )
    if use_label:
        residues = [Residue(name=name, seq_pos=i + 1) for i, name in enumerate(full)]
        slots = [r.label_seq - 1 for r in observed]
    else:
        # No usable entity sequence (e.g. a PDB file without SEQRES): the observed residues are the sequence,
        # numbered by author numbering so that chain breaks stay visible to the relative-position encoding.
        first = observed[0].seqid.num
        residues = [Residue(name=r.name, seq_pos=r.seqid.num - first + 1) for r in observed]
        slots = list(range(len(observed)))
    gemmi_at_slot: list[gemmi.Residue | None] = [None] * len(residues)
    for r, slot in zip(observed, slots, strict=True):
        if gemmi_at_slot[slot] is not None:
            continue  # microheterogeneity: keep the first residue at a position
        gemmi_at_slot[slot] = r
        atoms, b = _residue_atoms(r)
        residues[slot].name = r.name
        residues[slot].atoms = atoms
        residues[slot].plddt = float(np.mean(b)) if b else float("nan")
    for res in residues:
        if res.name == "MSE":
            res.name = "MET"
    chain = Chain(ch.name, sub.subchain_id(), f"poly:{entity.name}", mol_type, residues)
    return chain, gemmi_at_slot


def _expand_assembly(st: gemmi.Structure, name: str) -> str:
    """Expand assembly ``name`` of ``st`` in place; what the structure now is, for ``meta["assembly"]``."""
    found = [a for a in st.assemblies if a.name == name]
    if not found:
        return f"asymmetric unit (the file has no assembly {name!r})"
    # Waters (and other removed subchains) are still listed by the operators; gemmi refuses missing ones.
    present = {sub.subchain_id() for ch in st[0] for sub in ch.subchains()}
    for gen in found[0].generators:
        gen.subchains = [s for s in gen.subchains if s in present]
    # Short: the identity copy keeps its chain names (so MSAs named by chain still match), copies get new ones.
    st.transform_to_assembly(name, gemmi.HowToNameCopiedChain.Short)
    return f"assembly {name}"


def read_structure(
    path: str | Path,
    *,
    predicted: bool = False,
    plddt_min: float | None = None,
    drop_crystallization_aids: bool = True,
    assembly: str | None = None,
) -> Structure:
    """Parse ``path`` (``.cif``/``.mmcif``/``.pdb``/``.ent``, optionally ``.gz``) into a :class:`Structure`.

    Args:
        predicted: read pLDDT (0-100, or 0-1 rescaled) from the B-factor column.
        plddt_min: with ``predicted``, residues whose mean atom pLDDT is below this count as unresolved.
        drop_crystallization_aids: remove AF3's list of crystallisation aids (SO4, GOL, ...) from ligands.
        assembly: expand this biological assembly (AF3 trains on the first, ``"1"``) from the file's
            ``pdbx_struct_assembly_gen`` / REMARK 350 operators: the copy under the identity keeps its chain
            names, other copies get new ones. A file without that assembly keeps its asymmetric unit, which
            ``meta["assembly"]`` records. None: the asymmetric unit.

    Raises:
        DataPathError: the path does not exist or is a folder.
        StructureParseError: empty, truncated or non-structure file.
        EmptyChainError: a chain has no resolved atom.
        PLDDTFilterError: no residue passes ``plddt_min``.
    """
    path = Path(path)
    st = _read_gemmi(path)
    built_from = _expand_assembly(st, assembly) if assembly is not None else "asymmetric unit"
    chains: list[Chain] = []
    where: dict[tuple[str, int, str, str], tuple[int, int]] = {}
    for ch in st[0]:
        for sub in ch.subchains():
            entity = st.get_entity_of(sub)
            if entity is None or entity.entity_type == gemmi.EntityType.Water:
                continue
            if entity.entity_type == gemmi.EntityType.Polymer and entity.polymer_type in _POLYMER_TYPES:
                chain, gemmi_res = _polymer_chain(path, st, ch, sub, entity)
                groups = [(chain, gemmi_res)]
            elif entity.entity_type == gemmi.EntityType.Branched:
                residues, gemmi_res = [], []
                for i, r in enumerate(sub):
                    atoms, b = _residue_atoms(r)
                    residues.append(Residue(r.name, i + 1, atoms, float(np.mean(b)) if b else float("nan")))
                    gemmi_res.append(r)
                groups = [
                    (
                        Chain(ch.name, sub.subchain_id(), f"branched:{entity.name}", LIGAND, residues),
                        gemmi_res,
                    )
                ]
            else:
                groups = []
                for r in sub:
                    if r.name in EXCLUDED_LIGANDS or (
                        drop_crystallization_aids and r.name in CRYSTALLIZATION_AIDS
                    ):
                        continue
                    atoms, b = _residue_atoms(r)
                    res = Residue(r.name, 1, atoms, float(np.mean(b)) if b else float("nan"))
                    groups.append((Chain(ch.name, sub.subchain_id(), f"ligand:{r.name}", LIGAND, [res]), [r]))
            for chain, gemmi_res in groups:
                if not any(res.atoms for res in chain.residues):
                    raise EmptyChainError(
                        path, f"chain {chain.auth_id} ({chain.label_id}) has no resolved atoms"
                    )
                for j, r in enumerate(gemmi_res):
                    if r is not None:
                        where.setdefault((ch.name, r.seqid.num, r.seqid.icode, r.name), (len(chains), j))
                chains.append(chain)
    if not chains:
        raise StructureParseError(path, "no polymer or ligand chain with resolved atoms")
    if predicted:
        _apply_plddt(path, chains, plddt_min)
    bonds = []
    for conn in st.connections:
        if conn.type != gemmi.ConnectionType.Covale or conn.asu == gemmi.Asu.Different:
            continue
        ends = []
        for partner in (conn.partner1, conn.partner2):
            rid = partner.res_id
            hit = where.get((partner.chain_name, rid.seqid.num, rid.seqid.icode, rid.name))
            if hit is None:
                break
            ends.append(
                (
                    hit[0],
                    hit[1],
                    MSE_TO_MET_ATOMS.get(partner.atom_name, partner.atom_name)
                    if rid.name == "MSE"
                    else partner.atom_name,
                )
            )
        if len(ends) == 2:
            bonds.append((ends[0], ends[1]))
    meta = {
        "release_date": st.info["_harness.release_date"] or None,
        "resolution": st.resolution if st.resolution > 0 else None,
        "method": dict(st.info).get("_exptl.method"),  # gemmi.InfoMap has no .get
        "assembly": built_from,
    }
    return Structure(entry_id_of(path), str(path), chains, bonds, predicted, meta=meta)


def _apply_plddt(path: Path, chains: list[Chain], plddt_min: float | None) -> None:
    values = np.array([r.plddt for c in chains for r in c.residues], dtype=np.float64)
    finite = values[np.isfinite(values)]
    scale = 100.0 if finite.size and finite.max() <= 1.0 else 1.0
    kept = 0
    for chain in chains:
        for res in chain.residues:
            res.plddt *= scale
            if plddt_min is not None and res.atoms and not res.plddt >= plddt_min:
                res.atoms = {}
            kept += bool(res.atoms)
    if kept == 0:
        raise PLDDTFilterError(path, f"no residue has pLDDT >= {plddt_min}")
