"""`harness advise` and `harness report --predict-budget / --check-predictions` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.analysis.law_tables import completed_table

RUNS = Path(__file__).parents[2] / "analysis" / "data" / "runs"


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300)


def test_advise_on_the_long_fixture_refuses_with_the_reason():
    out = harness("advise", "--budget", "1000", "--gpu", "H100", "--runs-dir", str(RUNS), "--bootstrap", "100")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == ("Budget: 1000 H100 GPU-hours × 989.4 TFLOP/s peak dense BF16 × MFU 0.35 = 1.25e+21 "
                        "FLOPs.")
    assert lines[-1] == ("No recommendation: the runs have no FLOPs budgets (every run was trained to a step "
                         "budget), so there are no isoFLOP curves to read a compute-optimal size from")


def test_advise_recommends_within_the_backtested_range(tmp_path):
    table = tmp_path / "runs.csv"
    completed_table().to_csv(table, index=False)
    # 4e-5 H100-hours at MFU 0.35 = 4.99e13 FLOPs, inside the table's 1e12–1e14 budgets.
    out = harness("advise", "--budget", "4e-5", "--gpu", "h100", "--runs-table", str(table), "--bootstrap", "300")
    assert out.returncode == 0, out.stderr
    assert "= 4.99e+13 FLOPs." in out.stdout and "Backtests support extrapolating up to 2.51×" in out.stdout
    assert out.stdout.strip().splitlines()[-1].startswith("Recommendation: about ")


def test_advise_bad_input_is_one_line():
    out = harness("advise", "--budget", "10", "--gpu", "V100", "--runs-dir", str(RUNS))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "error: --gpu 'V100': unknown GPU; expected one of H100, H100-PCIE, H200, A100, L40S, MI300X"]


def test_checking_a_prediction_whose_runs_do_not_exist_names_file_and_target(tmp_path):
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"version": 1, "predictions": [{
        "target": {"config": "large", "budget_flops": 1e13}, "metric": "val/loss", "law": "L(N, D)",
        "predicted": 3.0, "interval": [2.9, 3.1], "seed_sd": 0.01}]}))
    out = harness("report", "width_vs_depth", "--runs-dir", str(RUNS), "--out", str(tmp_path / "r"),
                  "--check-predictions", str(preds))
    assert out.returncode == 2, out.stdout
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {preds}: target large at 1e+13 FLOPs: no completed run with val/loss there yet")
    assert not (tmp_path / "r" / "report.html").exists()


def test_predicting_without_a_presented_law_says_which_and_why(tmp_path):
    out = harness("report", "width_vs_depth", "--runs-dir", str(RUNS), "--out", str(tmp_path / "r"),
                  "--predict-budget", "1e13")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: --predict the compute-optimal configuration at 1e+13 FLOPs: L(C) of val/loss is not fitted: no "
        "FLOPs budgets: every run was trained to a step budget, so there is no isoFLOP frontier (L(C) needs runs "
        "whose schedules end at designed FLOPs budgets)")
    out = harness("report", "width_vs_depth", "--runs-dir", str(RUNS), "--predict-config", "large")
    assert out.returncode == 2 and "--predict-config and --predictions-out need --predict-budget" in out.stderr
