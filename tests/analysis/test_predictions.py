"""Pre-registered predictions: written before the runs exist, compared once they do, refused when they cannot be."""

from __future__ import annotations

import json

import pytest

from analysis.collect import ReportInputError
from analysis.predictions import Target, check_predictions, check_rows, predict, read_predictions, write_predictions
from tests.analysis.law_tables import BUDGETS, LAW, completed_table

LATER = 2.5e14


@pytest.fixture(scope="module")
def record():
    return predict(completed_table(step_budgets=(200_000,)), [Target(LATER, "xl"), Target(LATER)], sweep="toy")


def test_the_file_records_law_interval_and_backtests(record, tmp_path):
    path = write_predictions(record, tmp_path / "preds.json")
    saved = read_predictions(path)
    assert saved == json.loads(json.dumps(record)) and saved["sweep"] == "toy" and saved["n_runs"] == 126
    xl, best = saved["predictions"]
    assert (xl["law"], best["law"]) == ("L(N, D)", "L(C)")
    assert xl["target"] == {"config": "xl", "budget_flops": LATER} and best["target"]["config"] is None
    assert xl["factor_over_largest_budget"] == pytest.approx(2.5)
    truth = LAW.loss(4e6, LATER / (6 * 4e6))
    assert xl["interval"][0] <= truth <= xl["interval"][1]
    assert xl["interval"][0] < xl["predicted"] < xl["interval"][1]
    assert len(xl["backtests"]) == 2 and all(b.endswith("(passes)") for b in xl["backtests"])
    # The structure metrics come through the loss → metric mapping where it is presented.
    assert set(xl["structure"]) == {"val/lddt", "val/contact_precision"}


def test_a_later_report_compares_prediction_and_outcome(record, tmp_path):
    path = write_predictions(record, tmp_path / "preds.json")
    later = completed_table(step_budgets=(200_000,), budgets=(*BUDGETS, LATER))  # same draws, one budget more
    checks = check_predictions(path, later)
    observed = later.query("config == 'xl' and budget_flops == @LATER")["val/loss"].mean()
    xl, best = checks
    assert xl.observed == pytest.approx(observed, rel=1e-12) and xl.n_seeds == 3 and xl.config == "xl"
    assert xl.error == pytest.approx((xl.predicted - observed) / observed, rel=1e-12)
    assert xl.inside == (xl.low <= observed <= xl.high) and xl.inside
    assert best.config == "xl"  # the best configuration at that budget (its seed mean is the lowest)
    rows = check_rows(checks)
    assert rows["verdict"].tolist() == ["inside", "inside"] and rows["error"].str.endswith(" %").all()


def test_checking_before_the_runs_exist_names_file_and_target(record, tmp_path):
    path = write_predictions(record, tmp_path / "preds.json")
    with pytest.raises(ReportInputError) as err:
        check_predictions(path, completed_table())
    assert str(err.value).startswith(f"{path}: target xl at 2.5e+14 FLOPs: no completed run with val/loss there yet")


def test_bad_files_and_unpredictable_targets():
    table = completed_table()
    with pytest.raises(ReportInputError, match="no configuration 'huge' among the runs"):
        predict(table, [Target(1e15, "huge")], n_bootstrap=100)
    short = completed_table(budgets=BUDGETS[:4])
    with pytest.raises(ReportInputError, match=r"--predict the compute-optimal configuration at 1e\+15 FLOPs: L\(C\) "
                                               r"of val/loss is not fitted: too few points"):
        predict(short, [Target(1e15)], n_bootstrap=100)


def test_unreadable_prediction_files(tmp_path):
    with pytest.raises(ReportInputError, match="cannot read the predictions file"):
        read_predictions(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ReportInputError, match="bad.json: invalid JSON"):
        read_predictions(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"version": 1, "predictions": [{"target": {}}]}')
    with pytest.raises(ReportInputError, match="prediction 0 lacks"):
        read_predictions(tmp_path / "other.json")
