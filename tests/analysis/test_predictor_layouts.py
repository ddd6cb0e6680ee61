"""Prediction folders in the layouts AlphaFold 3, Boltz, Protenix and Chai-1 write, built from a real entry."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.eval import EvalOptions, Target, evaluate_all
from analysis.metrics.correspondence import ligand_mask
from analysis.predictor_layouts import find_samples
from analysis.structure_io import write_mmcif

SCORES = [0.61, 0.93, 0.42]  # sample 1 ranks first


def _ubq(load, sigma, seed):
    atoms = load("1ubq")
    atoms = atoms[~ligand_mask(atoms)]
    atoms.coord = atoms.coord + np.random.default_rng(seed).normal(0, sigma, atoms.coord.shape).astype(np.float32)
    return atoms


def _af3(root, job, load):
    """AlphaFold 3 3.0.1: seed-{s}_sample-{k}/{job}_seed-{s}_sample-{k}_{model.cif,summary_confidences.json}."""
    for k, score in enumerate(SCORES):
        sub = root / job / f"seed-7_sample-{k}"
        write_mmcif(_ubq(load, 0.3 * (k + 1), k), sub / f"{job}_seed-7_sample-{k}_model.cif")
        (sub / f"{job}_seed-7_sample-{k}_summary_confidences.json").write_text(
            json.dumps({"ranking_score": score, "ptm": 0.8, "iptm": None})
        )
    # The top-ranked copy at the job root is not a separate sample.
    write_mmcif(_ubq(load, 0.6, 1), root / job / f"{job}_model.cif")


def _af3_v300(root, job, load):
    """AlphaFold 3 3.0.0: seed-{s}_sample-{k}/model.cif and summary_confidences.json, lower-cased job folder."""
    for k, score in enumerate(SCORES):
        sub = root / job.lower() / f"seed-1_sample-{k}"
        write_mmcif(_ubq(load, 0.3 * (k + 1), k), sub / "model.cif")
        (sub / "summary_confidences.json").write_text(json.dumps({"ranking_score": score}))


def _boltz(root, job, load):
    """Boltz: boltz_results_{job}/predictions/{job}/{job}_model_{k}.cif + confidence_{job}_model_{k}.json."""
    folder = root / f"boltz_results_{job}" / "predictions" / job
    for k, score in enumerate(SCORES):
        write_mmcif(_ubq(load, 0.3 * (k + 1), k), folder / f"{job}_model_{k}.cif")
        (folder / f"confidence_{job}_model_{k}.json").write_text(
            json.dumps({"confidence_score": score, "ptm": 0.8, "complex_plddt": 0.9})
        )


def _protenix(root, job, load):
    """Protenix: {job}/seed_{s}/predictions/{job}_seed_{s}_sample_{k}.cif + _summary_confidence_sample_{k}.json."""
    folder = root / job / "seed_101" / "predictions"
    for k, score in enumerate(SCORES):
        write_mmcif(_ubq(load, 0.3 * (k + 1), k), folder / f"{job}_seed_101_sample_{k}.cif")
        (folder / f"{job}_seed_101_summary_confidence_sample_{k}.json").write_text(
            json.dumps({"ranking_score": score, "plddt": 85.0})
        )


def _chai1(root, job, load):
    """Chai-1: {job}/pred.model_idx_{k}.cif + scores.model_idx_{k}.npz (aggregate_score)."""
    folder = root / job
    for k, score in enumerate(SCORES):
        write_mmcif(_ubq(load, 0.3 * (k + 1), k), folder / f"pred.model_idx_{k}.cif")
        np.savez(folder / f"scores.model_idx_{k}.npz", aggregate_score=np.array([score]), ptm=np.array([0.8]))


WRITERS = {"alphafold3": _af3, "alphafold3_v300": _af3_v300, "boltz": _boltz, "protenix": _protenix,
           "chai1": _chai1}  # fmt: skip


@pytest.mark.parametrize("tool", list(WRITERS))
def test_layout_is_read_with_ranking_scores(tmp_path, load, tool):
    WRITERS[tool](tmp_path, "Ubq_Job", load)
    layout = tool.removesuffix("_v300")
    for asked in (layout, "auto"):
        samples = find_samples(tmp_path, "Ubq_Job", asked)
        assert [s.index for s in samples] == [0, 1, 2]
        assert [s.ranking_score for s in samples] == pytest.approx(SCORES)
        assert {s.layout for s in samples} == {layout}
        assert all(s.structure.is_file() for s in samples)
    others = [name for name in ("boltz", "protenix", "chai1", "seedfold") if name != layout]
    assert all(find_samples(tmp_path, "Ubq_Job", other) == [] for other in others)
    if layout == "alphafold3":
        assert samples[0].name.endswith("_sample-0")


@pytest.mark.parametrize("tool", ["alphafold3", "boltz", "protenix", "chai1"])
def test_every_sample_scored_and_top1_by_the_tools_score(tmp_path, load, data_dir, tool):
    WRITERS[tool](tmp_path / "pred", "ubq", load)
    target = Target("ubq", "monomer", "1ubq", ("A",), data_dir / "1ubq.cif.gz")
    raw, samples = evaluate_all([target], tmp_path / "pred", options=EvalOptions(layout=tool))
    assert list(samples["sample"]) == [0, 1, 2] and (samples["status"] == "ok").all()
    # Noise grows with k, so lDDT falls with k; top-1 follows the ranking score (sample 1), not lDDT.
    assert samples["lddt"].is_monotonic_decreasing
    assert raw.loc[0, "sample"] == 1 and raw.loc[0, "lddt"] == pytest.approx(samples.loc[1, "lddt"])
    oracle, _ = evaluate_all([target], tmp_path / "pred", select="best", options=EvalOptions(layout=tool))
    assert oracle.loc[0, "sample"] == 0
    assert isinstance(raw, pd.DataFrame) and raw.loc[0, "layout"] == tool


def test_unreadable_scores_refuse_top1(tmp_path, load, data_dir):
    _chai1(tmp_path, "ubq", load)
    (tmp_path / "ubq" / "scores.model_idx_2.npz").write_bytes(b"not an npz")
    assert find_samples(tmp_path, "ubq")[2].ranking_score is None
    target = Target("ubq", "monomer", "1ubq", ("A",), data_dir / "1ubq.cif.gz")
    raw, samples = evaluate_all([target], tmp_path)
    assert (samples["status"] == "ok").all()
    assert raw.loc[0, "status"] == "failed" and "samples [2] have no finite ranking score" in raw.loc[0, "error"]
