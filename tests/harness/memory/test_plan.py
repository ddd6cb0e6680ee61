"""The memory plan (traced step per stage, auto diffusion chunking), the fit check and the dry-run's column."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import RunConfig
from harness.memory.cache import TraceCache, trace_key
from harness.memory.fit import MemoryFitError, check_fit
from harness.memory.plan import chunk_candidates, plan_memory, step_shape
from harness.recipe import plan_stages, resolve

runner = CliRunner()


def _config(**policy) -> RunConfig:
    return RunConfig.model_validate({
        "model": {"preset": "base", "miniature": True, "n_pairformer_blocks": 1, "n_diffusion_blocks": 1,
                  "policy": policy},
        "data": {"crop_size": 16, "max_msa_rows": 4}, "train": {"diffusion_batch": 4, "max_steps": 10}})


def test_chunk_candidates_halve_down_to_one():
    assert chunk_candidates(64) == [64, 32, 16, 8, 4, 2, 1]
    assert chunk_candidates(48) == [48, 24, 12, 6, 3, 2, 1]
    assert chunk_candidates(1) == [1]


def test_memory_target_is_hash_neutral_at_its_default():
    assert _config(memory_target_gb=72.0).config_hash() == _config().config_hash()
    assert _config(memory_target_gb=60.0).config_hash() != _config().config_hash()


def test_auto_chunking_takes_the_most_copies_that_fit(tmp_path, monkeypatch):
    """Traced at every candidate (4, 2, 1 copies per call), auto picks the largest whose step fits the target;
    the recipe (the run folder's derived settings) records the choice, from the cache."""
    monkeypatch.setenv("SEEDFOLD_CACHE_DIR", str(tmp_path))
    cache = TraceCache(shipped=None)
    traced = {c: plan_memory(_config(diffusion_chunk_size=c), cache)[0].memory.peak_bytes for c in (4, 2, 1)}
    assert traced[4] > traced[2] > traced[1]
    target_gb = (traced[2] + traced[4]) / 2 / 1e9  # 2 copies fit, 4 do not
    config = _config(diffusion_chunk_size="auto", memory_target_gb=target_gb)
    (plan,) = plan_memory(config, cache)
    assert (plan.diffusion_chunk, plan.chunk_source, plan.memory.peak_bytes) == (2, "auto", traced[2])
    assert plan.fits_target
    n_traced = len(TraceCache(shipped=None).entries)
    assert resolve(config).chunking == [{"start": 0, "diffusion_chunk_size": 2, "source": "auto (traced)",
                                         "lddt_block_rows": plan.lddt_block_rows}]
    assert len(TraceCache(shipped=None).entries) == n_traced  # the recipe read the cache, traced nothing new
    roomy = plan_memory(_config(diffusion_chunk_size="auto", memory_target_gb=1.0), cache)[0]
    assert (roomy.diffusion_chunk, roomy.memory.peak_bytes) == (None, traced[4])  # all copies at once


def test_trace_key_ignores_what_changes_no_tensor():
    shape = step_shape(_config(), plan_stages(_config())[0])
    arch = _config().model.architecture()
    assert trace_key(arch, shape) == trace_key(arch.model_copy(update={"pair_dropout": 0.1}), shape)
    assert trace_key(arch, shape) != trace_key(arch.model_copy(update={"c_z": 32}), shape)


def test_fit_check_names_the_run_its_traced_figure_and_the_limit(tmp_path):
    cache = TraceCache(path=tmp_path / "traces.json", shipped=None)
    plans = {"tiny": plan_memory(_config(), cache)}
    gb = plans["tiny"][0].memory.peak_gb
    check_fit(plans, gpu_memory_gb=gb / 0.85)  # fits with more than 10 % headroom
    check_fit(plans, gpu_memory_gb=None)  # memory not stated: nothing to check
    with pytest.raises(MemoryFitError) as err:
        check_fit(plans, gpu_memory_gb=gb)
    (line,) = str(err.value).splitlines()
    assert line.startswith(f"run tiny: traced {gb:.1f} GB per GPU at crop 16 (stage from step 0) exceeds "
                           f"{0.9 * gb:.1f} GB (90 % of a {gb:g} GB GPU)")


PAPER_RUNS = ("base", "medium", "large", "deep_pairformer", "deep_structure")


def test_paper_dry_run_shows_traced_memory_of_both_stages_within_an_80_gb_gpu():
    """Every paper configuration at crop 384 and 640 fits 72 GB (shipped traces, harness/memory/traces.json)."""
    result = runner.invoke(app, ["sweep", "sweeps/width_vs_depth.yaml", "--profile", "paper", "--dry-run"],
                           env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "GPU 80 GB, fits = within 72 GB" in result.output
    assert result.output.count("384: ") == 5 and result.output.count("640: ") == 5
    assert result.output.count("GB traced") == 10
    assert "DOES NOT FIT" not in result.output
    cache = TraceCache()
    from harness.sweep.service import memory_plans, prepare

    plans = memory_plans(prepare("sweeps/width_vs_depth.yaml", profile="paper", executor="local"))
    assert cache.traced == 0
    assert set(plans) == set(PAPER_RUNS)
    for label, stages in plans.items():
        assert [p.crop_tokens for p in stages] == [384, 640], label
        assert all(p.memory.peak_gb <= 72.0 for p in stages), (label, [p.memory.peak_gb for p in stages])


def test_a_run_that_does_not_fit_is_refused_before_submission(tmp_path):
    result = runner.invoke(app, ["sweep", "sweeps/width_vs_depth.yaml", "--profile", "paper", "--executor", "local",
                                 "--gpu-memory", "40", "--set", f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code != 0 and isinstance(result.exception, MemoryFitError)
    lines = str(result.exception).splitlines()
    assert lines and all(line.startswith("run ") and "exceeds 36.0 GB (90 % of a 40 GB GPU)" in line for line in lines)
    assert any(line.startswith("run large: traced ") for line in lines)
    assert not (tmp_path / "runs").exists()  # nothing submitted, no run folder written
