"""FoldBench-style evaluation end to end on real entries with perturbed copies as predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.eval import EvalOptions, evaluate_all, find_samples, select_top1, summarize
from analysis.metrics.correspondence import ligand_mask
from analysis.structure_io import prediction_paths, write_mmcif, write_prediction
from analysis.targets import TargetsFileError, load_targets


def evaluate(targets, predictions_dir, *, select="top1", strict=False):
    """The per-target table of the selected samples (``evaluate_all``'s first table)."""
    return evaluate_all(targets, predictions_dir, select=select, options=EvalOptions(strict=strict))[0]

TARGETS = """target_id,task,entry_id,chain_ids,ligand
ubq,monomer,1ubq,A,
dimer,protein_protein,4i6p,A;B,
dna,protein_dna,2q2k,A F,
lig,protein_ligand,7l39,A,MBN
renamed,protein_protein,4i6p,A;B,
empty,monomer,1ubq,A,
nochain,protein_protein,4i6p,A;B,
ligatoms,protein_ligand,7l39,A,MBN
absent,monomer,1ubq,A,
"""


def _noisy(atoms, seed, sigma):
    out = atoms.copy()
    out.coord = out.coord + np.random.default_rng(seed).normal(0, sigma, out.coord.shape).astype(np.float32)
    return out


def _write(pred_dir, target, k, atoms, ranking):
    write_prediction(pred_dir, target, k, atoms, np.full(atoms.array_length(), 80.0), ranking=ranking)


@pytest.fixture
def workspace(tmp_path, load, data_dir):
    csv = tmp_path / "targets.csv"
    csv.write_text(TARGETS)
    pred = tmp_path / "pred"
    ubq = load("1ubq")
    ubq = ubq[~ligand_mask(ubq)]
    # Sample 0 is better but ranked lower: top-1 must pick sample 1, the oracle sample 0.
    _write(pred, "ubq", 0, _noisy(ubq, 0, 0.2), ranking=0.2)
    _write(pred, "ubq", 1, _noisy(ubq, 1, 1.0), ranking=0.9)
    dimer = load("4i6p")
    dimer = dimer[~ligand_mask(dimer)]
    _write(pred, "dimer", 0, dimer, ranking=0.5)
    dna = load("2q2k")
    _write(pred, "dna", 0, _noisy(dna[~ligand_mask(dna) | dna.hetero], 2, 0.3), ranking=0.5)
    _write(pred, "lig", 0, load("7l39"), ranking=0.5)
    renamed = dimer.copy()
    renamed.chain_id = np.where(renamed.chain_id == "A", "X", "Y")
    _write(pred, "renamed", 0, renamed, ranking=0.5)
    empty = prediction_paths(pred, "empty", 0).structure
    empty.parent.mkdir(parents=True)
    empty.write_text("")
    _write(pred, "nochain", 0, dimer[dimer.chain_id == "A"], ranking=0.5)
    lig = load("7l39")
    drop = np.flatnonzero(lig.res_name == "MBN")[:3]
    keep = np.ones(lig.array_length(), dtype=bool)
    keep[drop] = False
    write_mmcif(lig[keep], prediction_paths(pred, "ligatoms", 0).structure)  # no confidences JSON: 1 sample
    return csv, pred, data_dir


def test_evaluation_records_every_target(workspace):
    csv, pred, refs = workspace
    raw = evaluate(load_targets(csv, refs), pred).set_index("target_id")
    assert list(raw.index) == ["ubq", "dimer", "dna", "lig", "renamed", "empty", "nochain", "ligatoms", "absent"]
    assert raw.loc["ubq", "sample"] == 1
    assert raw.loc["dimer", "dockq"] == pytest.approx(1.0) and raw.loc["dimer", "success"] == 1.0
    assert raw.loc["dna", "status"] == "ok" and raw.loc["dna", "dockq"] > 0.5
    assert raw.loc["lig", "ligand_rmsd"] == pytest.approx(0.0, abs=1e-4) and raw.loc["lig", "lddt_pli"] == 1.0
    # Renamed chains with the right sequences are mapped back by sequence.
    assert raw.loc["renamed", "status"] == "ok" and raw.loc["renamed", "dockq"] == pytest.approx(1.0)
    assert raw.loc["empty", "status"] == "failed" and "file is empty" in raw.loc["empty", "error"]
    assert raw.loc["nochain", "status"] == "failed" and "reference chain(s) B" in raw.loc["nochain", "error"]
    assert raw.loc["ligatoms", "status"] == "failed" and "lacks atoms" in raw.loc["ligatoms", "error"]
    assert raw.loc["absent", "status"] == "missing"

    summary = summarize(raw.reset_index()).set_index("task")
    mono = summary.loc["monomer"]
    assert (mono["n_targets"], mono["n_evaluated"], mono["n_failed"], mono["n_missing"]) == (3, 1, 1, 1)
    assert mono["value"] == pytest.approx(raw.loc["ubq", "lddt"] / 3)
    assert mono["value_evaluated_only"] == pytest.approx(raw.loc["ubq", "lddt"])
    pp = summary.loc["protein_protein"]
    assert pp["metric"] == "success_rate" and pp["value"] == pytest.approx(2 / 3)
    assert pp["value_evaluated_only"] == 1.0 and pp["mean_irmsd"] == pytest.approx(0.0, abs=1e-6)
    assert summary.loc["protein_ligand", "value"] == 0.5


def test_oracle_and_strict_chain_mapping(workspace):
    csv, pred, refs = workspace
    targets = load_targets(csv, refs)
    oracle = evaluate(targets, pred, select="best").set_index("target_id")
    top1 = evaluate(targets, pred).set_index("target_id")
    assert oracle.loc["ubq", "sample"] == 0 and oracle.loc["ubq", "lddt"] > top1.loc["ubq", "lddt"]
    strict = evaluate([t for t in targets if t.target_id == "renamed"], pred, strict=True)
    assert strict.loc[0, "status"] == "failed" and "strict" in strict.loc[0, "error"]


def test_top1_needs_ranking_scores(tmp_path, load):
    atoms = load("1ubq")
    for k in range(2):
        write_mmcif(atoms, prediction_paths(tmp_path, "t", k).structure)
    samples = find_samples(tmp_path, "t")
    assert [s.index for s in samples] == [0, 1]
    with pytest.raises(ValueError, match="no finite ranking_score"):
        select_top1(samples)


def test_targets_file_errors_list_every_problem(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("task,entry_id,chain_ids,ligand\nmonomer,1abc,A;B,\nfolding,1xyz,A,\nprotein_ligand,2abc,A,\n")
    with pytest.raises(TargetsFileError) as info:
        load_targets(bad, tmp_path)
    message = str(info.value)
    assert "row 2 (1abc): task monomer needs 1 chain id(s)" in message
    assert "row 3 (1xyz): task 'folding' is not one of" in message
    assert "row 4 (2abc): column ligand" in message
    no_columns = tmp_path / "c.csv"
    no_columns.write_text("task,entry\nmonomer,1abc\n")
    with pytest.raises(TargetsFileError, match="missing column"):
        load_targets(no_columns, tmp_path)
    with pytest.raises(TargetsFileError, match="file not found"):
        load_targets(tmp_path / "none.csv")


def test_raw_table_columns_are_stable(workspace):
    csv, pred, refs = workspace
    raw = evaluate(load_targets(csv, refs)[:1], pred)
    assert isinstance(raw, pd.DataFrame)
    assert list(raw.columns[:6]) == ["target_id", "task", "entry_id", "chain_ids", "status", "error"]
