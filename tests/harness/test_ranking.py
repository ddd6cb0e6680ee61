"""AF3's disorder term on real and constructed geometry, and when ranking is available."""

import biotite.structure as struc
import numpy as np
import pytest

from analysis.structure_io import read_structure
from harness.config import RunConfig, parse_config
from harness.data.starter import starter_dir
from harness.ranking import fraction_disordered, ranking_available


@pytest.fixture(scope="module")
def ubiquitin():
    atoms = read_structure(starter_dir() / "structures" / "1ubq.cif.gz")
    return atoms[struc.filter_amino_acids(atoms)]


def test_a_folded_protein_is_mostly_ordered_and_an_exploded_one_fully_disordered(ubiquitin):
    assert fraction_disordered(ubiquitin) < 0.2  # compact 76-residue fold: only the flexible tail is exposed
    exploded = ubiquitin.copy()
    residue = struc.get_residue_positions(exploded, np.arange(exploded.array_length()))
    exploded.coord = exploded.coord + residue[:, None] * np.array([30.0, 0.0, 0.0])  # residues 30 Å apart
    assert fraction_disordered(exploded) == 1.0


def test_no_protein_means_no_disorder(ubiquitin):
    ligand = ubiquitin[:10].copy()
    ligand.hetero[:] = True
    assert fraction_disordered(ligand) == 0.0


def test_ranking_needs_a_trained_confidence_head():
    raw = {"name": "x", "model": {"preset": "base", "miniature": True}}
    assert not ranking_available(parse_config(RunConfig, raw, "<t>"))
    assert ranking_available(parse_config(RunConfig, raw | {"train": {"confidence_loss": True}}, "<t>"))
    off = raw | {"model": {"preset": "base", "miniature": True, "use_confidence_head": False},
                 "train": {"confidence_loss": True}}  # fmt: skip
    assert not ranking_available(parse_config(RunConfig, off, "<t>"))
