"""Tables beside the paper's numbers, written as Markdown, CSV and LaTeX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.collect import ReportInputError, read_run_folders, tidy
from analysis.tables import (
    data_table,
    foldbench_table,
    paper_row_for,
    read_eval_summary,
    width_vs_depth_table,
    write_table,
)

RUNS = Path(__file__).parent / "data" / "runs"
RUNS_V0 = Path(__file__).parent / "data" / "runs_v0"  # quickstart runs recorded before the estimator


def test_width_vs_depth_table_has_measured_and_paper_columns(tmp_path):
    frame = tidy(read_run_folders(RUNS_V0, "width_vs_depth"))
    table = width_vs_depth_table(frame)
    assert table["preset"].tolist() == ["base", "medium", "large", "deep_pairformer", "deep_structure"]
    assert table["paper_params"].tolist() == [432e6, 533e6, 923e6, 582e6, 706e6]
    assert table["paper_iter_per_s"].tolist() == [0.15, 0.10, 0.06, 0.10, 0.10]
    params = {p.parent.name: None for p in (RUNS_V0 / "width_vs_depth").glob("*/state.json")}
    assert len(params) == 5
    assert (table["params"] > 0).all() and table["params"].is_unique
    assert table.loc[0, "params ×base"] == 1.0
    assert table.loc[2, "paper params ×base"] == pytest.approx(923 / 432)
    finals = table["final val/lddt"].map(lambda cell: float(cell.split()[0]))
    assert finals.between(0, 1).all()
    # One seed and no recorded estimator noise: the table says the interval is unknown instead of inventing one.
    assert (table["final val/lddt"].str.endswith("(1 seed, ± n/a)")).all()
    assert table.loc[0, "val/lddt step 0"].startswith("0.1282")
    assert (table["guard"] == "none rescued").all()
    paths = write_table(table, tmp_path, "wd", "caption")
    assert [p.suffix for p in paths] == [".md", ".csv", ".tex"]
    assert pd.read_csv(paths[1])["config"].tolist() == table["config"].tolist()
    assert "\\begin{tabular}" in paths[2].read_text() and "deep\\_pairformer" in paths[2].read_text()
    assert paths[0].read_text().count("\n|") >= 6


def test_paper_row_matching():
    assert paper_row_for("mini_deep_pairformer").name == "deep_pairformer"
    assert paper_row_for("medium").name == "medium"
    assert paper_row_for("mediumish") is None


def test_foldbench_table_from_eval_summary(tmp_path):
    summary = tmp_path / "summary.csv"
    pd.DataFrame({"task": ["monomer", "protein_protein", "protein_ligand"], "value": [0.71, 0.5, 0.25],
                  "value_evaluated_only": [0.8, 0.6, 0.5], "n_targets": [4, 2, 4]}).to_csv(summary, index=False)
    table = foldbench_table(read_eval_summary(summary), name="mini")
    mine = table[table["model"] == "mini"].iloc[0]
    assert mine["monomer lDDT"] == 0.71 and mine["prot–prot (%)"] == 50.0 and mine["prot–lig (%)"] == 25.0
    assert table.loc[table["model"] == "SeedFold", "Ab–Ag (%)"].item() == 53.21
    dropped = foldbench_table(read_eval_summary(summary), name="mini", evaluated_only=True)
    assert dropped.loc[dropped["model"] == "mini", "prot–lig (%)"].item() == 50.0
    (tmp_path / "bad.csv").write_text("category,score\nmonomer,1\n")
    with pytest.raises(ReportInputError, match="bad.csv: missing columns"):
        read_eval_summary(tmp_path / "bad.csv")


def test_table_aggregates_seeds_with_intervals_baselines_and_guard_marks(tmp_path):
    from tests.analysis.recorded_runs import RecordedRun, width_vs_depth, write_run

    width_vs_depth(tmp_path, seeds=3, spread=0.05, noise=0.01)
    write_run(tmp_path, RecordedRun(name="base", preset="base", seed=3, n_seeds=4, seed_offset=0.0,
                                    guard_rescued=True))
    table = width_vs_depth_table(tidy(read_run_folders(tmp_path, "width_vs_depth"))).set_index("config")
    assert table.loc["medium", "seeds"] == 3 and table.loc["base", "seeds"] == 4
    assert table.loc["base", "guard"] == "† 1 of 4 rescued" and table.loc["large", "guard"] == "none rescued"
    # medium's last validation at 400 steps × 2e8 FLOPs: 9 − 2·log10(80) with seeds ±0.05.
    mean, pm, half = table.loc["medium", "final val/loss"].split()[:3]
    assert pm == "±" and float(mean) == pytest.approx(9 - 2 * np.log10(80), abs=1e-3)
    assert float(half) == pytest.approx(stats.t.ppf(0.975, 2) * 0.05 / np.sqrt(3), abs=0.005)  # 2 digits
    assert table.loc["medium", "val/lddt step 0"].startswith("0.05 ±")
    assert (table["val/lddt geometric baseline"] == "0.12").all()


def test_data_table_counts_structures_and_tokens(tmp_path):
    from tests.analysis.recorded_runs import width_vs_depth

    width_vs_depth(tmp_path, seeds=2)
    (row,) = data_table(tidy(read_run_folders(tmp_path, "width_vs_depth"))).to_dict("records")
    assert (row["runs"], row["train_structures"], row["train_tokens"], row["val_structures"], row["val_tokens"]) == (
        10, 120, 30000, 24, 6000)
    assert row["val σ nodes"] == "5 from 0.05 to 16 Å"
    old = data_table(tidy(read_run_folders(RUNS_V0, "width_vs_depth")))
    assert old.to_dict("records") == [{"runs": 5, "recorded": "not recorded (runs predate the data-count params)"}]
