"""Ranking of predicted samples (AF3 SI §5.9.3): which sample ``harness predict`` and ``harness eval`` call top-1.

score = 0.8·ipTM + 0.2·pTM (pTM alone for one chain) + 0.5·fraction disordered − 100·has_clash. pTM, ipTM and
the clash flag come from the model (``models.confidence_metrics``); the disorder fraction needs the structure's
solvent-accessible surface, computed here with biotite. The score is only meaningful when the confidence head was
trained (``train.confidence_loss``); :func:`ranking_available` says whether it was.
"""

from __future__ import annotations

import biotite.structure as struc
import numpy as np

from harness.config import RunConfig
from harness.recipe import confidence_trains

# Maximum accessible surface per residue type, Å² (Sander & Rost 1994, the values AF3 normalises by).
MAX_ASA = {
    "ALA": 106.0, "ARG": 248.0, "ASN": 157.0, "ASP": 163.0, "CYS": 135.0, "GLN": 198.0, "GLU": 194.0,
    "GLY": 84.0, "HIS": 184.0, "ILE": 169.0, "LEU": 164.0, "LYS": 205.0, "MET": 188.0, "PHE": 197.0,
    "PRO": 136.0, "SER": 130.0, "THR": 142.0, "TRP": 227.0, "TYR": 222.0, "VAL": 142.0,
}  # fmt: skip
RASA_WINDOW = 25  # residues averaged around each one (AF3's windowed RASA)
RASA_DISORDER_CUTOFF = 0.581  # windowed relative accessibility above this counts as disordered (AF3)

UNAVAILABLE_NOTE = (
    "ranking unavailable: the run did not train the confidence head (train.confidence_loss: false), so pTM, "
    "ipTM and pLDDT are untrained; samples keep their sampling order (ranking_score = -sample index)"
)


def ranking_available(config: RunConfig) -> bool:
    """Whether this run's confidence outputs were trained, so ranking by them means something."""
    return confidence_trains(config)


def fraction_disordered(atoms: struc.AtomArray) -> float:
    """Fraction of standard protein residues whose windowed relative solvent accessibility exceeds 0.581.

    Accessibility: Shrake-Rupley SASA (biotite, probe 1.4 Å) summed per residue over the whole structure, over
    the residue type's maximum, clipped at 1, then averaged over a centred window of 25 residues per chain.
    0.0 without protein residues."""
    heavy = atoms[atoms.element != "H"]
    if heavy.array_length() == 0:
        return 0.0
    # 200 sphere points: ~1 Å² precision per residue, plenty against a 0.581 cutoff on a 25-residue mean
    sasa = np.nan_to_num(struc.sasa(heavy, vdw_radii="ProtOr", ignore_ions=False, point_number=200))
    per_res = struc.apply_residue_wise(heavy, sasa, np.sum)
    starts = struc.get_residue_starts(heavy)
    names, chains = heavy.res_name[starts], heavy.chain_id[starts]
    standard = np.isin(names, list(MAX_ASA)) & ~heavy.hetero[starts]
    if not standard.any():
        return 0.0
    flags = []
    for chain in np.unique(chains[standard]):
        sel = standard & (chains == chain)
        rasa = np.minimum(per_res[sel] / np.array([MAX_ASA[n] for n in names[sel]]), 1.0)
        half = (RASA_WINDOW - 1) // 2
        padded = np.pad(rasa, half, mode="edge")
        windowed = np.convolve(padded, np.ones(RASA_WINDOW) / RASA_WINDOW, mode="valid")
        flags.append(windowed > RASA_DISORDER_CUTOFF)
    return float(np.mean(np.concatenate(flags)))
