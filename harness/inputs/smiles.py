"""Reference conformers for ligands given as SMILES, from RDKit (ETKDG v3 embedding, then MMFF relaxation).

AF3 does the same for ligands without a CCD entry: heavy atoms only, named element + running index (C1, C2, O1).
"""

from __future__ import annotations

import numpy as np

from harness.data.ccd import Component
from harness.inputs.job import FoldInputError


def smiles_component(smiles: str, code: str, source: str, *, seed: int = 0) -> Component:
    """The heavy-atom reference conformer of ``smiles`` as a CCD-like :class:`Component` named ``code``."""
    try:
        from rdkit import Chem, RDLogger
        from rdkit.Chem import AllChem
    except ImportError:  # pragma: no cover - rdkit is a dependency
        raise FoldInputError(source, "SMILES ligands need RDKit (pip install rdkit)") from None
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise FoldInputError(source, f"ligand SMILES {smiles!r} cannot be parsed by RDKit")
    with_h = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(with_h, params) != 0:
        params.useRandomCoords = True  # large or strained molecules: RDKit's documented fallback
        if AllChem.EmbedMolecule(with_h, params) != 0:
            raise FoldInputError(source, f"ligand SMILES {smiles!r}: RDKit could not embed a 3D conformer")
    if AllChem.MMFFHasAllMoleculeParams(with_h):
        AllChem.MMFFOptimizeMolecule(with_h, maxIters=500)
    mol = Chem.RemoveHs(with_h)
    pos = np.asarray(mol.GetConformer().GetPositions(), dtype=np.float32)
    pos -= pos.mean(axis=0, keepdims=True)
    counts: dict[str, int] = {}
    names = []
    for atom in mol.GetAtoms():
        symbol = atom.GetSymbol().upper()
        counts[symbol] = counts.get(symbol, 0) + 1
        names.append(f"{symbol}{counts[symbol]}")
    bonds = np.array(sorted(tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds()),
                     dtype=np.int64).reshape(-1, 2)
    return Component(
        code=code,
        atom_names=np.asarray(names, dtype=str),
        elements=np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64),
        charges=np.array([a.GetFormalCharge() for a in mol.GetAtoms()], dtype=np.float32),
        ideal_pos=pos,
        bonds=bonds,
        parent="",
        link_type="NON-POLYMER",
    )
