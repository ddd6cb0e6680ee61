"""`harness data prepare` / `stats` through the real CLI app."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from harness.cli.data import app


def test_prepare_then_stats(tmp_path, structures):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(structures / "1ubq.cif.gz", src)
    shutil.copy(structures / "3mht.pdb.gz", src)
    (src / "broken.cif").write_text("not a structure\n")
    runner = CliRunner()
    result = runner.invoke(app, ["prepare", str(src), str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "kept 2 entries, skipped 1" in result.output
    result = runner.invoke(app, ["stats", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "2 entries" in result.output and "dna" in result.output


def test_wrong_path_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["stats", str(tmp_path)])
    assert result.exit_code != 0
    assert "not a feature cache" in str(result.exception)
