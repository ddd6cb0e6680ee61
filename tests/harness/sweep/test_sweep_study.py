"""Study designs (harness/sweep/study.py): every configuration completes its schedule at every budget, shorter runs
branch off the longest, bad budgets are refused at --dry-run, and a scan chooses each configuration's lr."""

from __future__ import annotations

import json
import sys

import cloudpickle
import pytest
import toy_trainer
from sweep_files import write_sweep
from typer.testing import CliRunner

from analysis.lr_scan import choose_lr
from harness.cli import app
from harness.errors import ConfigError
from harness.sweep.expand import expand, load_sweep
from harness.sweep.service import prepare, run_prepared
from harness.sweep.study import BRANCH, SCAN, TRUNK, configurations
from harness.tracking import names

cloudpickle.register_pickle_by_value(toy_trainer)
cloudpickle.register_pickle_by_value(sys.modules[__name__])
runner = CliRunner()


def study_sweep(tmp_path, **study):
    return write_sweep(tmp_path, "st", base={"runs_dir": str(tmp_path / "runs"),
                                             "model": {"preset": "base", "miniature": True},
                                             "data": {"crop_size": 16},
                                             "train": {"lr": 0.2, "warmup_steps": 2, "checkpoint_every": 4}},
                       runs={"a": {}, "b": {"model.preset": "medium"}}, seeds=[0, 1],
                       study={"lr": "config"} | study)


def test_each_budget_is_a_complete_run_and_shorter_runs_branch_off_the_longest(tmp_path):
    path = study_sweep(tmp_path, budgets=[2.0e10, 6.0e10], steps=[30])
    prepared = prepare(path, executor="local")
    plan = prepared.study
    fps = {c.name: c.flops_per_step for c in configurations(expand(load_sweep(path), source=str(path)))}
    steps = {c: sorted({round(2e10 / f), round(6e10 / f), 30}) for c, f in fps.items()}
    for spec in prepared.specs:
        conf, role = spec.tags[names.TAG_STUDY_CONFIG], spec.tags[names.TAG_STUDY_ROLE]
        t = spec.config.train
        assert t.schedule.kind == "wsd" and t.schedule.decay_fraction == 0.2
        assert spec.label == f"{conf}-lr0.2-S{t.max_steps}-s{spec.config.seed}"
        starts = [s - max(1, round(0.2 * s)) for s in steps[conf][:-1]]
        if role == TRUNK:
            assert t.max_steps == steps[conf][-1] and t.milestone_steps == starts and spec.after is None
        else:
            assert role == BRANCH and t.max_steps in steps[conf][:-1]
            start = t.max_steps - max(1, round(0.2 * t.max_steps))
            trunk = next(s for s in prepared.specs if s.tags[names.TAG_STUDY_ROLE] == TRUNK
                         and s.tags[names.TAG_STUDY_CONFIG] == conf and s.config.seed == spec.config.seed)
            assert spec.after == (trunk.key, start)
            assert spec.config.init_from.run_dir == trunk.run_dir and spec.config.init_from.step == start
    # Every (configuration, budget) is planned once per seed: 2 configurations x 3 lengths x 2 seeds.
    assert len(prepared.specs) == 12 and plan.lrs == {"a": 0.2, "b": 0.2}
    budgets = {spec.tags[names.TAG_STUDY_BUDGETS] for spec in prepared.specs if spec.config.train.max_steps == 30}
    assert budgets == {"steps:30"}


def test_budgets_a_configuration_cannot_complete_are_refused_one_line_each(tmp_path):
    path = study_sweep(tmp_path, budgets=[1.0e8, 1.0e13], max_steps=1000)
    with pytest.raises(ConfigError) as err:
        prepare(path, executor="local")
    lines = err.value.problems
    assert len(lines) == 4  # two configurations x two budgets
    assert any(line.startswith("budget 1e+08 FLOPs: a gets 1 steps (") and "too few for its warmup of 2 steps"
               in line for line in lines)
    assert any(line.startswith("budget 1e+13 FLOPs: b needs ") and "above the study's max_steps 1000" in line
               for line in lines)
    result = runner.invoke(app, ["sweep", str(path), "--dry-run"])
    assert result.exit_code != 0 and "budget 1e+08 FLOPs: a gets 1 steps" in str(result.exception)


def test_a_set_of_what_the_study_derives_is_refused_naming_the_key(tmp_path):
    path = study_sweep(tmp_path, budgets=[2.0e10])
    with pytest.raises(ConfigError) as err:
        prepare(path, executor="local", extra={"train.max_steps": 4, "train.schedule.decay_fraction": 0.5,
                                                "train.lr": 0.1})
    assert [line.split(":")[0] for line in err.value.problems] == ["--set train.max_steps",
                                                                   "--set train.schedule.decay_fraction"]
    assert "study.budgets" in err.value.problems[0] and "study.decay_fraction" in err.value.problems[1]
    result = runner.invoke(app, ["sweep", str(path), "--dry-run", "--set", "train.max_steps=4"])
    assert result.exit_code != 0 and "--set train.max_steps: a study design" in str(result.exception)


def test_dry_run_lists_steps_schedule_start_and_lr_per_budget(tmp_path):
    path = study_sweep(tmp_path, budgets=[2.0e10, 6.0e10])
    result = runner.invoke(app, ["sweep", str(path), "--dry-run"], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "study: 2 budgets x 2 configurations, each run complete at its budget" in out
    assert "from scratch (trunk)" in out and "branch at step" in out and "1-sqrt cooldown" in out
    assert "0.2 (the configuration's own train.lr)" in out


def test_scan_runs_validate_at_their_end_only_and_a_study_run_the_scan_trained_is_that_run(tmp_path):
    from harness.sweep.study import SCAN_VALIDATION, plan_study

    path = study_sweep(tmp_path, budgets=[1.0e10, 3.0e10], lr="scan", scan={"factors": [0.5, 1, 2]})
    sweep = load_sweep(path)
    plan = plan_study(expand(sweep, source=str(path)), sweep.study, sweep="st", profile=None, source=str(path),
                      chosen={"a": (0.2, "scan: at 1x"), "b": (0.3, "scan: between")})
    assert len(plan.scan) == 6  # 2 configurations x 3 rates, the scan's seed 0
    for spec in plan.scan:
        t = spec.config.train
        assert (t.val_at_start, t.val_every, t.val_log_points) == (False, None, 0) == tuple(SCAN_VALIDATION.values())
    scan_keys = {s.key for s in plan.scan}
    for spec in plan.runs:
        conf, t = spec.tags[names.TAG_STUDY_CONFIG], spec.config.train
        short = t.max_steps == min(s.config.train.max_steps for s in plan.scan
                                   if s.tags[names.TAG_STUDY_CONFIG] == conf)
        if conf == "a" and short and spec.config.seed == 0:  # a scanned rate: at the scan budget, the scan's run
            assert spec.key in scan_keys and spec.tags[names.TAG_STUDY_ROLE] == SCAN
        else:  # the profile's validation schedule, step 0 included
            assert spec.key not in scan_keys and t.val_at_start and t.val_log_points == 0 and t.val_every == 250
    assert len(plan.specs) == 6 + 8 - 1  # the shared run counted once


def test_dry_run_shows_the_scan_runs_validation(tmp_path):
    from harness.sweep.settings import settings

    path = study_sweep(tmp_path, budgets=[1.0e10, 3.0e10], lr="scan", scan={"factors": [0.5, 1, 2]})
    rows = {(r.key, r.runs): r for r in settings(load_sweep(path), None, str(path))}
    for key, value in (("val_at_start", "false"), ("val_every", "null"), ("val_log_points", "0")):
        row = rows[(f"train.{key}", "lr scan runs")]
        assert (row.value, row.source) == (value, f"{path}: study (study design: the scan reads final val/loss only)")
    result = runner.invoke(app, ["sweep", str(path), "--dry-run"], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "scan runs validate at their last step only" in " ".join(result.output.split())


@pytest.mark.slow
def test_scan_chooses_each_lr_then_the_study_runs_with_branches_after_their_parents(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_STEP_S", "0.01")
    path = write_sweep(tmp_path, "st", base={"runs_dir": str(tmp_path / "runs"),
                                             "model": {"preset": "base", "miniature": True},
                                             "data": {"crop_size": 16},
                                             "train": {"lr": 0.2, "warmup_steps": 2, "checkpoint_every": 4}},
                       runs={"a": {}}, seeds=[0],
                       study={"budgets": [1.0e10, 3.0e10], "lr": "scan", "scan": {"factors": [0.5, 1, 2]}})
    prepared = prepare(path, executor="local", parallelism=2)
    assert prepared.study.runs is None and {s.tags[names.TAG_STUDY_ROLE] for s in prepared.specs} == {SCAN}
    assert sorted(s.config.train.lr for s in prepared.specs) == [0.1, 0.2, 0.4]
    outcome = run_prepared(prepared, entrypoint=toy_trainer.toy_train, poll_s=0.2)
    assert not outcome.failed, outcome.failed
    # The rate is the minimum of the parabola through the scan's final losses (analysis.lr_scan), recorded.
    finals = {s.config.train.lr: json.loads((s.run_dir / "state.json").read_text())["last_metrics"][names.VAL_LOSS]
              for s in prepared.specs}
    expected = choose_lr(sorted(finals), [finals[lr] for lr in sorted(finals)])
    chosen = json.loads((tmp_path / "runs" / "st" / "lr_choice.json").read_text())
    assert chosen["a"]["lr"] == expected.lr and expected.note in chosen["a"]["note"]
    again = prepare(path, executor="local")
    assert again.study.lrs == {"a": expected.lr}
    study_runs = [s for s in again.specs if s.tags[names.TAG_STUDY_ROLE] != SCAN]
    assert {s.tags[names.TAG_STUDY_ROLE] for s in study_runs} == {TRUNK, BRANCH}
    for spec in study_runs:
        state = json.loads((spec.run_dir / "state.json").read_text())
        assert state["status"] == "finished" and state["step"] == spec.config.train.max_steps
        if spec.after is not None:  # started from its trunk's milestone, once the trunk had kept it
            assert state["branched_from"] == {"run": str(spec.config.init_from.run_dir), "step": spec.after[1]}
    assert load_sweep(path).study.lr == "scan"
