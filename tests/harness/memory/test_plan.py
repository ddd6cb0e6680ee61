"""The memory plan (traced step per stage, auto diffusion chunking), the fit check and the dry-run's column."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import RunConfig
from harness.memory.cache import TraceCache, trace_key
from harness.memory.fit import MemoryFitError, check_fit
from harness.memory.plan import _auto_chunk, chunk_candidates, plan_memory, step_shape
from harness.recipe import plan_stages, resolve
from harness.sweep.estimate import estimate
from models.memory import StepMemory

runner = CliRunner()


def _config(accelerator: str = "auto", **policy) -> RunConfig:
    return RunConfig.model_validate({
        "model": {"preset": "base", "miniature": True, "n_pairformer_blocks": 1, "n_diffusion_blocks": 1,
                  "policy": policy},
        "data": {"crop_size": 16, "max_msa_rows": 4},
        "train": {"diffusion_batch": 4, "max_steps": 10, "accelerator": accelerator}})


def test_chunk_candidates_halve_down_to_one():
    assert chunk_candidates(64) == [64, 32, 16, 8, 4, 2, 1]
    assert chunk_candidates(48) == [48, 24, 12, 6, 3, 2, 1]
    assert chunk_candidates(1) == [1]


def _linear(fixed_gb: float, per_copy_gb: float, traced: list):
    """A step whose memory is ``fixed + per_copy x copies alive at once`` (all D when unchunked)."""
    def trace(chunk):
        traced.append(chunk)
        return StepMemory(int((fixed_gb + per_copy_gb * (64 if chunk is None else chunk)) * 1e9))
    return trace


@pytest.mark.parametrize("fixed_gb, per_copy_gb, chunk, traces", [
    (10.0, 0.5, None, [None]),  # 42 GB with all 64 copies: no chunking, one trace
    (40.0, 0.9, 32, [None, 32]),  # 97.6 GB at 64, 68.8 at 32
    (60.0, 0.9, 8, [None, 32, 16, 8]),  # the line through 32 and 16 predicts 8 (67.2 GB); 16 is known too big
    (70.0, 0.9, 2, [None, 32, 16, 2, 4]),  # predicted 2 (71.8 GB); 4 (73.6 GB) traced to confirm, too big
    (80.0, 0.1, 1, [None, 32, 16, 1]),  # nothing fits (80.1 GB at 1): the fewest copies
])
def test_auto_chunk_finds_the_most_copies_that_fit_with_few_traces(fixed_gb, per_copy_gb, chunk, traces):
    traced: list = []
    got, memory = _auto_chunk(64, 72.0, _linear(fixed_gb, per_copy_gb, traced))
    assert got == chunk and traced == traces
    assert memory.peak_bytes == int((fixed_gb + per_copy_gb * (64 if chunk is None else chunk)) * 1e9)


def test_auto_chunk_goes_up_when_the_prediction_was_pessimistic():
    """Memory drops steeply below 16 copies: the line through 32 and 16 predicts that only 1 fits; 2, 4 and 8 are
    then traced upwards and fit too: auto takes 8."""
    traced: list = []
    gb = {None: 120.0, 32: 100.0, 16: 90.0, 8: 60.0, 4: 58.0, 2: 57.0, 1: 56.5}

    def trace(chunk):
        traced.append(chunk)
        return StepMemory(int(gb[chunk] * 1e9))

    got, memory = _auto_chunk(64, 72.0, trace)
    assert (got, memory.peak_gb) == (8, 60.0)
    assert traced == [None, 32, 16, 1, 2, 4, 8]


def test_memory_target_is_hash_neutral_at_its_default():
    assert _config(memory_target_gb=72.0).config_hash() == _config().config_hash()
    assert _config(memory_target_gb=60.0).config_hash() != _config().config_hash()


def test_auto_chunking_takes_the_most_copies_that_fit(tmp_path, monkeypatch):
    """Traced at every candidate (4, 2, 1 copies per call), auto picks the largest whose step fits the target;
    the recipe (the run folder's derived settings) records the choice, from the cache."""
    monkeypatch.setenv("SEEDFOLD_CACHE_DIR", str(tmp_path))
    cache = TraceCache(shipped=None)
    traced = {c: plan_memory(_config(diffusion_chunk_size=c), cache, trace=True)[0].memory.peak_bytes
              for c in (4, 2, 1)}
    assert traced[4] > traced[2] > traced[1]
    target_gb = (traced[2] + traced[4]) / 2 / 1e9  # 2 copies fit, 4 do not
    config = _config(diffusion_chunk_size="auto", memory_target_gb=target_gb)
    (plan,) = plan_memory(config, cache, trace=True)
    assert (plan.diffusion_chunk, plan.chunk_source, plan.memory.peak_bytes) == (2, "auto", traced[2])
    assert plan.fits_target
    n_traced = len(TraceCache(shipped=None).entries)
    assert resolve(config).chunking == [{"start": 0, "diffusion_chunk_size": 2, "source": "auto (traced)",
                                         "lddt_block_rows": plan.lddt_block_rows}]
    assert len(TraceCache(shipped=None).entries) == n_traced  # the recipe read the cache, traced nothing new
    roomy = plan_memory(_config(diffusion_chunk_size="auto", memory_target_gb=1.0), cache, trace=True)[0]
    assert (roomy.diffusion_chunk, roomy.memory.peak_bytes) == (None, traced[4])  # all copies at once


def test_cpu_runs_and_flops_only_estimates_trace_nothing(tmp_path, monkeypatch):
    """A CPU run's plan reads the cache and shows "not traced"; estimate(memory=False) (a study's FLOPs per step)
    leaves even a GPU run's auto chunking unresolved rather than trace: no trace is written anywhere."""
    monkeypatch.setenv("SEEDFOLD_CACHE_DIR", str(tmp_path))
    size = estimate(_config("gpu", diffusion_chunk_size="auto"), memory=False)
    assert size.memory == [] and size.flops_per_step > 0
    assert size.recipe.chunking == [{"start": 0, "diffusion_chunk_size": None, "source": "auto (not traced)",
                                     "lddt_block_rows": 192}]
    (plan,) = estimate(_config()).memory  # train.accelerator auto: not a GPU run
    assert plan.memory is None and not plan.fits_target
    result = runner.invoke(app, ["sweep", "sweeps/width_vs_depth.yaml", "--profile", "mini", "--dry-run"],
                           env={"COLUMNS": "400", "SEEDFOLD_CACHE_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert result.output.count("32: not traced (CPU run), diff all/4") == 10  # 5 configurations x 2 seeds
    assert not (tmp_path / "memory_traces.json").exists()


def test_trace_key_ignores_what_changes_no_tensor():
    shape = step_shape(_config(), plan_stages(_config())[0])
    arch = _config().model.architecture()
    assert trace_key(arch, shape) == trace_key(arch.model_copy(update={"pair_dropout": 0.1}), shape)
    assert trace_key(arch, shape) != trace_key(arch.model_copy(update={"c_z": 32}), shape)


def test_fit_check_names_the_run_its_traced_figure_and_the_limit(tmp_path):
    cache = TraceCache(path=tmp_path / "traces.json", shipped=None)
    plans = {"tiny": plan_memory(_config(), cache, trace=True)}
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
