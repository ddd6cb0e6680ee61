"""`harness eval` on the command line: tables written, bad input reported in one line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from analysis.metrics.correspondence import ligand_mask
from analysis.structure_io import write_prediction
from harness.cli import app
from harness.cli.eval import EvalInputError, _fmt
from harness.cli.eval import app as eval_app


def test_eval_writes_raw_and_summary(tmp_path, load, data_dir):
    (tmp_path / "targets.csv").write_text(
        "task,entry_id,chain_ids,ligand\nprotein_protein,4i6p,A;B,\nmonomer,1ubq,A,\n"
    )
    dimer = load("4i6p")
    dimer = dimer[~ligand_mask(dimer)]
    write_prediction(tmp_path / "pred", "4i6p", 0, dimer, np.full(dimer.array_length(), 90.0), ranking=1.0)
    args = ["eval", "--targets", str(tmp_path / "targets.csv"), "--predictions", str(tmp_path / "pred"),
            "--references", str(data_dir), "--out", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    # A target without predictions is not scored: the tables are written and the exit status says so.
    assert result.exit_code == 1, result.output
    assert "1 of 2 targets not scored (0 failed, 1 missing)" in result.output
    raw = pd.read_csv(tmp_path / "out" / "raw.csv")
    assert list(raw["status"]) == ["ok", "missing"]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("task")
    assert summary.loc["protein_protein", "value"] == 1.0
    assert summary.loc["monomer", "n_missing"] == 1 and summary.loc["monomer", "value"] == 0.0
    assert "missing" in result.output and "1ubq" in result.output
    # The stand-alone sub-app runs the same command.
    assert CliRunner().invoke(eval_app, args[1:]).exit_code == 1


def test_bad_targets_file_is_one_line_error(tmp_path):
    (tmp_path / "pred").mkdir()
    bad = tmp_path / "t.csv"
    bad.write_text("task,entry_id,chain_ids\nmonomer,1abc,A;B\n")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "eval", "--targets", str(bad), "--predictions", str(tmp_path / "pred"),
         "--references", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "row 2 (1abc): task monomer needs 1 chain id(s)" in proc.stderr


def _run(tmp_path, targets_csv, *extra, references=None):
    args = ["eval", "--targets", str(targets_csv), "--predictions", str(tmp_path / "pred"),
            "--references", str(references or tmp_path), "--out", str(tmp_path / "out"), *extra]  # fmt: skip
    return CliRunner().invoke(app, args)


def test_label_and_author_chain_ids_give_the_same_scores(tmp_path, load, data_dir):
    """2Q2K: protein author chain A is label_asym_id B, DNA author chain F is label A."""
    dna = load("2q2k")
    rng = np.random.default_rng(4)
    model = dna.copy()
    model.coord = model.coord + rng.normal(0, 0.4, model.coord.shape).astype(np.float32)
    write_prediction(tmp_path / "pred", "2q2k", 0, model, np.full(model.array_length(), 90.0), ranking=1.0)
    csv = tmp_path / "t.csv"
    csv.write_text("target_id,task,entry_id,chain_ids\n2q2k,protein_dna,2q2k,A;F\n")
    assert _run(tmp_path, csv, "--chain-ids", "auth", references=data_dir).exit_code == 0
    by_auth = pd.read_csv(tmp_path / "out" / "raw.csv")
    csv.write_text("target_id,task,entry_id,chain_ids\n2q2k,protein_dna,2q2k,B;A\n")
    assert _run(tmp_path, csv, "--chain-ids", "label", references=data_dir).exit_code == 0
    by_label = pd.read_csv(tmp_path / "out" / "raw.csv")
    assert by_label.loc[0, "dockq"] == pytest.approx(by_auth.loc[0, "dockq"], abs=1e-9)
    assert 0.5 < by_auth.loc[0, "dockq"] < 1.0
    # Author ids read as label ids: F does not exist; the message echoes it and names the other option.
    csv.write_text("target_id,task,entry_id,chain_ids\n2q2k,protein_dna,2q2k,A;F\n")
    result = _run(tmp_path, csv, "--chain-ids", "label", references=data_dir)
    assert result.exit_code == 1
    error = pd.read_csv(tmp_path / "out" / "raw.csv").loc[0, "error"]
    assert "chain(s) 'F' not in reference 2q2k.cif.gz by label_asym_id (it has A, B, C, D)" in error
    assert "--chain-ids auth" in error


def test_foldbench_target_lists_score_every_sample_and_interface(tmp_path, load, data_dir):
    """FoldBench's own CSVs (label chain ids; ligand by chain and CCD code), several samples per entry."""
    refs = tmp_path / "refs"
    refs.mkdir()
    for entry in ("2q2k", "7l39"):
        (refs / f"{entry}-assembly1.cif.gz").write_bytes((data_dir / f"{entry}.cif.gz").read_bytes())
    dna, lig = load("2q2k"), load("7l39")
    for k in range(3):
        noisy = dna.copy()
        noisy.coord = noisy.coord + np.random.default_rng(k).normal(0, 0.3 * (k + 1), noisy.coord.shape).astype(
            np.float32
        )
        write_prediction(tmp_path / "pred", "2q2k-assembly1", k, noisy, np.full(noisy.array_length(), 80.0),
                         ranking=[0.2, 0.9, 0.5][k])  # fmt: skip
    write_prediction(tmp_path / "pred", "7l39-assembly1", 0, lig, np.full(lig.array_length(), 80.0), ranking=0.5)
    dna_csv = tmp_path / "interface_protein_dna.csv"
    dna_csv.write_text(
        "pdb_id,interface_chain_id_1,interface_chain_id_2,interface_chain_type_1,interface_chain_type_2\n"
        "2q2k-assembly1,B,A,protein,dna\n2q2k-assembly1,B,C,protein,dna\n"
    )
    result = _run(tmp_path, dna_csv, "--lddt", "complex", "--lddt", "interface", references=refs)
    assert result.exit_code == 0, result.output
    raw = pd.read_csv(tmp_path / "out" / "raw.csv").set_index("target_id")
    samples = pd.read_csv(tmp_path / "out" / "samples.csv")
    assert list(raw.index) == ["2q2k-assembly1:B:A", "2q2k-assembly1:B:C"]
    assert len(samples) == 6 and sorted(set(samples["sample"])) == [0, 1, 2]  # 3 samples × 2 interfaces
    assert (raw["sample"] == 1).all()  # top-1 by ranking score
    assert raw["lddt_complex"].between(0.5, 1.0).all() and raw["lddt_interface"].between(0.3, 1.0).all()
    assert not (tmp_path / "out" / "2q2k-assembly1").exists()  # no folder per (sample, interface)
    assert _fmt(0.7293, percent=True) == "72.93% (0.7293)"  # percent as FoldBench prints it, beside the fraction

    lig_csv = tmp_path / "interface_protein_ligand.csv"
    lig_csv.write_text(
        "pdb_id,native_chain_id_1,native_chain_id_2,native_chain_type_1,native_chain_type_2,ligand_id\n"
        "7l39-assembly1,A,D,protein,ligand,(MBN)\n"
    )
    assert _run(tmp_path, lig_csv, references=refs).exit_code == 0
    raw = pd.read_csv(tmp_path / "out" / "raw.csv")
    assert raw.loc[0, "target_id"] == "7l39-assembly1:A:D:MBN" and raw.loc[0, "lddt_pli"] == 1.0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.loc[0, "value"] == 1.0


def test_exit_status_counts_failures_and_reports_unmapped_interfaces(tmp_path, load, data_dir):
    dimer = load("4i6p")
    dimer = dimer[~ligand_mask(dimer)]
    write_prediction(tmp_path / "pred", "ok", 0, dimer, np.full(dimer.array_length(), 90.0), ranking=1.0)
    half = dimer[dimer.chain_id == "A"]
    write_prediction(tmp_path / "pred", "half", 0, half, np.full(half.array_length(), 90.0), ranking=1.0)
    csv = tmp_path / "t.csv"
    csv.write_text("target_id,task,entry_id,chain_ids\nok,protein_protein,4i6p,A;B\nhalf,protein_protein,4i6p,A;B\n"
                   "mono,monomer,4i6p,A\n")  # fmt: skip
    (tmp_path / "pred" / "mono").mkdir()
    result = _run(tmp_path, csv, references=data_dir)
    assert result.exit_code == 1
    assert "2 of 3 targets not scored (1 failed, 1 missing)" in result.output
    raw = pd.read_csv(tmp_path / "out" / "raw.csv").set_index("target_id")
    assert raw.loc["half", "unmapped_interfaces"] == "A-B" and pd.isna(raw.loc["ok", "unmapped_interfaces"])
    assert raw.loc["ok", "n_reference_interfaces"] == 1
    printed = " ".join(result.output.split())  # rich wraps long lines at the terminal width
    assert "half: reference interface(s) A-B have a chain that no prediction chain maps onto" in printed
    csv.write_text("target_id,task,entry_id,chain_ids\nok,protein_protein,4i6p,A;B\n")
    assert _run(tmp_path, csv, references=data_dir).exit_code == 0
    for bad in (["--chain-ids", "pdb"], ["--layout", "colabfold"], ["--lddt", "global"], ["--nonstandard", "x"]):
        # (`python -m harness` turns this input error into exit status 2, see test_bad_targets_file_is_one_line_error)
        outcome = _run(tmp_path, csv, *bad, references=data_dir)
        assert isinstance(outcome.exception, EvalInputError), bad
        assert repr(bad[1]) in str(outcome.exception) and "object at" not in str(outcome.exception)


def test_ligand_convention_defaults_to_foldbenchs_and_is_printed(tmp_path, load, data_dir):
    """FoldBench scored lDDT-PLI without model-only contacts (OpenStructure 2.8 without --lddt-pli-amc):
    that is the default; ``--convention ost-latest`` (or ``--pli-model-contacts``) penalises them."""
    from analysis.metrics.ligand import LigandSelector, ligand_pose

    ref = load("7l39")
    lig = LigandSelector.parse("MBN").residues(ref)[0]
    centre = ref.coord[lig].mean(axis=0)
    # A lysine NZ far from the ligand in the reference, moved next to it in the model: a model-only contact.
    nz = np.flatnonzero(~ligand_mask(ref) & (ref.res_name == "LYS") & (ref.atom_name == "NZ")
                        & (np.linalg.norm(ref.coord - centre, axis=1) > 15))[0]
    model = ref.copy()
    model.coord[nz] = ref.coord[lig[0]] + np.array([0.0, 0.0, 3.0], dtype=np.float32)
    write_prediction(tmp_path / "pred", "7l39", 0, model, np.full(model.array_length(), 90.0), ranking=1.0)
    pose = ligand_pose(ref, model, "MBN", add_mdl_contacts=True)
    n_new = int((np.linalg.norm(ref.coord[lig] - model.coord[nz], axis=1) < 6.0).sum())
    penalised = pose.n_pli_contacts / (pose.n_pli_contacts + n_new)
    assert n_new > 0 and penalised < 1.0
    csv = tmp_path / "t.csv"
    csv.write_text("task,entry_id,chain_ids,ligand\nprotein_ligand,7l39,A,MBN\n")

    def scored(*extra):
        result = _run(tmp_path, csv, *extra, references=data_dir)
        assert result.exit_code == 0, result.output
        summary = pd.read_csv(tmp_path / "out" / "summary.csv")
        return pd.read_csv(tmp_path / "out" / "raw.csv").loc[0, "lddt_pli"], summary.loc[0, "convention"], result

    value, recorded, result = scored()
    assert value == 1.0 and recorded == "foldbench"
    assert "convention: foldbench (FoldBench's: OpenStructure 2.8" in " ".join(result.output.split())
    for extra in (["--convention", "ost-latest"], ["--pli-model-contacts"],
                  ["--convention", "ost-latest", "--pli-model-contacts"]):
        value, recorded, result = scored(*extra)
        assert value == pytest.approx(penalised, abs=1e-12) and recorded == "ost-latest", extra
        assert "convention: ost-latest (newer OpenStructure's default" in " ".join(result.output.split())
    assert scored("--no-pli-model-contacts")[:2] == (1.0, "foldbench")
    clash = _run(tmp_path, csv, "--convention", "foldbench", "--pli-model-contacts", references=data_dir)
    assert isinstance(clash.exception, EvalInputError)
    assert str(clash.exception) == ("--convention foldbench and --pli-model-contacts disagree "
                                    "(--pli-model-contacts is --convention ost-latest)")
    unknown = _run(tmp_path, csv, "--convention", "ost-2.9", references=data_dir)
    assert str(unknown.exception) == "option: convention 'ost-2.9': expected one of foldbench, ost-latest"
