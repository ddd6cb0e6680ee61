"""The dry-run's settings table: each setting's value, where it was written and the runs it applies to."""

from __future__ import annotations

import yaml
from sweep_files import write_sweep
from typer.testing import CliRunner

from harness.cli import app
from harness.sweep.expand import load_sweep
from harness.sweep.profiles import shown
from harness.sweep.settings import Setting, settings


def _sweep(tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "small.yaml").write_text(yaml.safe_dump({"overrides": {"train.max_steps": 6, "train.lr": 0.05},
                                                       "seeds": [0, 1]}))
    path = write_sweep(tmp_path, grid={"train.warmup_steps": [1, 2]},
                       profiles={"p": {"extends": "small", "overrides": {"train.checkpoint_every": 3},
                                       "runs": {"a": {"train.max_steps": 8}}}})
    return path, shown(folder / "small.yaml")


def test_every_setting_with_its_source_and_runs(tmp_path):
    path, small = _sweep(tmp_path)
    rows = settings(load_sweep(path), "p", str(path), extra={"train.log_every": 2})
    s = str(path)
    assert rows == [
        Setting("model.miniature", "true", f"{s}: base", "all"),
        Setting("model.preset", "base", f"{s}: base", "all"),
        Setting("runs_dir", str(tmp_path / "runs"), f"{s}: base", "all"),
        Setting("tracking.experiment", "toy", f"{s}: name", "all"),
        Setting("train.checkpoint_every", "3", f"{s}: profiles.p", "all"),
        Setting("train.log_every", "2", "--set", "all"),
        Setting("train.lr", "0.05", small, "a-warmup_steps1, a-warmup_steps2"),
        Setting("train.lr", "0.1", f"{s}: runs.b", "b-warmup_steps1, b-warmup_steps2"),
        Setting("train.max_steps", "8", f"{s}: profiles.p.runs.a", "a-warmup_steps1, a-warmup_steps2"),
        Setting("train.max_steps", "6", small, "b-warmup_steps1, b-warmup_steps2"),
        Setting("train.warmup_steps", "1", f"{s}: grid", "a-warmup_steps1, b-warmup_steps1"),
        Setting("train.warmup_steps", "2", f"{s}: grid", "a-warmup_steps2, b-warmup_steps2"),
    ]


def test_study_settings_are_marked_as_the_study_designs():
    rows = settings(load_sweep("sweeps/width_vs_depth.yaml"), "study", "sweeps/width_vs_depth.yaml")
    by = {(r.key, r.value): r for r in rows}
    design = "sweeps/profiles/study.yaml (study design)"
    assert by[("train.max_steps", "per run (study table)")].source == design
    assert "train.max_steps" not in {k for k, v in by if v != "per run (study table)"}
    scan = [r for r in rows if r.key == "train.lr" and r.source == design]
    assert [r.value for r in scan] == ["x [0.5, 1.0, 2.0, 4.0, 8.0] (the scan), then each configuration's choice "
                                       "(study table)"]
    assert [(r.source, r.runs) for r in rows if (r.key, r.value) == ("train.lr", "0.004")] == [
        ("sweeps/profiles/study.yaml", "base, medium, deep_pairformer, deep_structure"),
        ("sweeps/width_vs_depth.yaml: profiles.study.runs.large", "large")]
    assert by[("data.crop_size", "32")].source == "sweeps/profiles/mini.yaml"
    assert by[("runs_dir", "runs/study")].source == "sweeps/profiles/study.yaml"


def test_dry_run_shows_the_settings_table(tmp_path):
    path, small = _sweep(tmp_path)
    result = CliRunner().invoke(app, ["sweep", str(path), "--profile", "p", "--dry-run", "--set",
                                      "train.log_every=2"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    lines = [" ".join(c.strip() for c in line.split("│")[1:-1]) for line in result.output.splitlines()
             if line.count("│") == 5]
    assert f"train.checkpoint_every 3 {path}: profiles.p all" in lines
    assert f"train.max_steps 6 {small} b-warmup_steps1, b-warmup_steps2" in lines
    assert "train.log_every 2 --set all" in lines
    assert not (tmp_path / "runs").exists()
