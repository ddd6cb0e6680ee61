"""The laws part of a report: rows, sentences and figures, on a table drawn from a known law and on the long
fixture (where every law and mapping is refused and nothing is drawn for them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.collect import read_run_folders, tidy
from analysis.completed import completed_runs
from analysis.laws_report import laws_section
from tests.analysis.law_tables import BUDGETS, completed_table


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    return laws_section(completed_table(step_budgets=(200_000,)), n_bootstrap=1000,
                        out_dir=tmp_path_factory.mktemp("laws"))


@pytest.fixture(scope="module")
def long_section(tmp_path_factory):
    frame = tidy(read_run_folders(Path(__file__).parent / "data" / "runs", "width_vs_depth"))
    return laws_section(completed_runs(frame), n_bootstrap=200, out_dir=tmp_path_factory.mktemp("long"))


def svg(section, name: str) -> str:
    return next(p for p in section.figures[name] if p.suffix == ".svg").read_text()


def test_rows_put_each_backtest_next_to_its_law(section):
    rows = section.law_rows().set_index("law")
    nd = rows.loc["L(N, D) = E + A/N^α + B/D^β"]
    assert nd["points"] == 42 and nd["result"].startswith("E = ") and "α = " in nd["result"]
    assert nd["backtest: largest budget"].startswith("without the largest budget (1e+14 FLOPs), 2.5× past")
    assert nd["backtest: largest configuration"].startswith("without the largest configuration (xxl)")
    assert set(rows["intervals over"]) == {"seeds"}
    optima = section.optima_rows()
    assert optima["FLOPs budget"].tolist() == [f"{b:.3g}" for b in BUDGETS]
    assert optima["best"].tolist() == ["s", "m", "m", "l", "l", "xl"]
    assert section.ladder_rows()["metric"].tolist() == ["val/lddt", "val/contact_precision"]


def test_figures_draw_presented_laws_with_their_backtests(section):
    laws = svg(section, "laws")
    for text in ("L(C) fit", "L(N) fit", "L(N, D) fit", "refit without 1e+14 FLOPs", "refit without xxl",
                 "backtest without 1e+14 FLOPs", "= 4·diffusion + 0.03·distogram CE",
                 "(matched compute)", "(matched steps)"):
        assert text in laws, text
    iso = svg(section, "isoflops")
    assert "N_opt (parabola vertex); a = 0.52" in iso and "1e+14 FLOPs" in iso and "matched compute" in iso
    assert "not fitted" not in iso


def test_the_long_fixture_section_refuses_and_draws_no_law(long_section):
    lines = long_section.lines()
    assert lines[0] == ("L(C) = E + A·C^−α (val/loss, 0 points): not fitted: no FLOPs budgets: every run was "
                        "trained to a step budget, so there is no isoFLOP frontier (L(C) needs runs whose schedules "
                        "end at designed FLOPs budgets).")
    assert lines[1] == ("L(N) = E + A·N^−α (val/loss, 5 points): not fitted: too few points (5 for 3 coefficients; "
                        "needs at least 6).")
    assert lines[-1].startswith("val/lddt from val/loss: not fitted: not monotone in the expected direction")
    laws = svg(long_section, "laws")
    assert "not fitted: too few points (5 for 3" in laws and " fit (band" not in laws and "refit" not in laws
    assert "not fitted: no FLOPs budgets" in svg(long_section, "isoflops")
    ladder = svg(long_section, "ladder")
    assert "not fitted: not monotone in the expected direction" in ladder and "σ(a + b" not in ladder
    assert long_section.optima == []
