"""`harness sweep --dry-run`, `harness status` and `harness sweep --cancel` through the real CLI app."""

from __future__ import annotations

import sys
import time

import cloudpickle
import pytest
import toy_trainer
import yaml
from sweep_files import write_sweep
from typer.testing import CliRunner

from harness.cli import app
from harness.dispatch.executor import active_slurm_jobs
from harness.dispatch.ledger import JobRecord, Ledger
from harness.sweep.driver import SweepDriver
from harness.sweep.expand import load_and_expand
from harness.sweep.service import prepare
from harness.tracking import names
from harness.tracking.run_folder import RunFolder

cloudpickle.register_pickle_by_value(toy_trainer)
cloudpickle.register_pickle_by_value(sys.modules[__name__])
runner = CliRunner()


def test_dry_run_prints_sizes_and_starts_nothing(tmp_path):
    with open("sweeps/width_vs_depth.yaml") as f:
        sweep = yaml.safe_load(f)
    sweep["base"]["runs_dir"] = str(tmp_path / "runs")
    path = tmp_path / "wvd.yaml"
    path.write_text(yaml.safe_dump(sweep))
    result = runner.invoke(app, ["sweep", str(path), "--profile", "paper", "--dry-run"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for label in ("base", "medium", "large", "deep_pairformer", "deep_structure"):
        assert label in result.output
    from models.accounting import count_parameters

    specs = prepare(path, profile="paper").specs
    for spec in specs:  # parameter counts as models.accounting gives them, in millions
        assert f"{count_parameters(spec.config.model.architecture())['total'] / 1e6:.3g}M" in result.output
    assert "8 GPU/node" in result.output  # the paper profile's placement
    assert not (tmp_path / "runs").exists()


def test_bad_override_exits_nonzero_with_the_key(tmp_path):
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path)), "--dry-run", "--set", "train.lrr=1"])
    assert result.exit_code != 0
    assert "unknown key 'lrr' under train" in str(result.exception)


def test_status_reads_run_folders_and_ledger(tmp_path):
    _, specs = load_and_expand(write_sweep(tmp_path))
    done, failed = specs
    for spec in specs:
        spec.run_dir.mkdir(parents=True)
        RunFolder(spec.run_dir).config_path.write_text(yaml.safe_dump(spec.config.model_dump(mode="json")))
    RunFolder(done.run_dir).update_state(status="finished", step=12, last_metrics={names.LOSS: 0.0123})
    RunFolder(failed.run_dir).update_state(status="failed", step=5, last_metrics={names.LOSS: 2.5})
    ledger = Ledger.load(done.run_dir.parent)
    ledger.jobs[failed.key] = JobRecord("slurm", "987654", str(tmp_path), "/logs/987654_0_log.out",
                                        label=failed.label, error="boom")
    ledger.save()
    result = runner.invoke(app, ["status", str(done.run_dir.parent)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 5}
    assert "done" in lines[done.label] and "12/12" in lines[done.label] and "0.0123" in lines[done.label]
    assert "failed" in lines[failed.label] and "5/12" in lines[failed.label]
    assert "slurm:987654" in lines[failed.label] and "/logs/987654_0_log.out" in lines[failed.label]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_cancel_stops_the_sweeps_jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_STEP_S", "1.0")
    path = write_sweep(tmp_path, executor={"slurm_profile": "cpu_small", "slurm": {"mem_gb": 1}})
    prepared = prepare(path, executor="slurm")
    driver = SweepDriver(prepared.specs, prepared.settings, "slurm", resources=prepared.resources,
                         entrypoint=toy_trainer.toy_train)
    try:
        driver.start()
        ids = [driver.ledger.jobs[s.key].job_id for s in prepared.specs]
        assert set(ids) <= set(active_slurm_jobs())
        result = runner.invoke(app, ["sweep", str(path), "--executor", "slurm", "--cancel"])
        assert result.exit_code == 0, result.output
        assert "cancelled 2 job(s)" in result.output
        deadline = time.monotonic() + 60
        while set(ids) & set(active_slurm_jobs()):
            assert time.monotonic() < deadline, "jobs still queued/running after --cancel"
            time.sleep(1)
    finally:
        driver.close()
