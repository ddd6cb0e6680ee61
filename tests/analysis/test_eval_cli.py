"""`harness eval` on the command line: tables written, bad input reported in one line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from analysis.metrics.correspondence import ligand_mask
from analysis.structure_io import write_prediction
from harness.cli import app
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
