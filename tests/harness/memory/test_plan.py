"""The memory plan (traced step per stage, auto diffusion chunking), the fit check and the dry-run's column."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import RunConfig
from harness.memory.cache import SHIPPED, TraceCache, TracingOff, trace_key
from harness.memory.fit import MemoryFitError, check_fit
from harness.memory.plan import _auto_chunk, chunk_candidates, plan_memory, stage_architecture, step_shape
from harness.recipe import plan_stages, resolve
from harness.sizes import estimate
from models.memory import CATEGORIES, StepMemory, trace_step

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
    (40.0, 0.9, 32, [None, 1, 32]),  # 97.6 GB at 64, 68.8 at 32
    (60.0, 0.9, 8, [None, 1, 32, 8, 16]),  # the line through 1 and 32 predicts 8 (67.2 GB); 16 traced, too big
    (70.0, 0.9, 2, [None, 1, 32, 2, 4]),  # predicted 2 (71.8 GB); 4 (73.6 GB) traced to confirm, too big
    (80.0, 0.1, 1, [None, 1]),  # nothing fits (80.1 GB at 1): the fewest copies, and no search
])
def test_auto_chunk_finds_the_most_copies_that_fit_with_few_traces(fixed_gb, per_copy_gb, chunk, traces):
    traced: list = []
    got, memory = _auto_chunk(64, 72.0, _linear(fixed_gb, per_copy_gb, traced))
    assert got == chunk and traced == traces
    assert memory.peak_bytes == int((fixed_gb + per_copy_gb * (64 if chunk is None else chunk)) * 1e9)


def test_auto_chunk_goes_up_when_the_prediction_was_pessimistic():
    """Memory drops steeply below 16 copies: the line through 1 and 32 predicts that 4 fits (the line through
    the two smallest traced); 8 is then traced upwards and fits too, 16 does not: auto takes 8."""
    traced: list = []
    gb = {None: 120.0, 32: 100.0, 16: 90.0, 8: 60.0, 4: 58.0, 2: 57.0, 1: 56.5}

    def trace(chunk):
        traced.append(chunk)
        return StepMemory(int(gb[chunk] * 1e9))

    got, memory = _auto_chunk(64, 72.0, trace)
    assert (got, memory.peak_gb) == (8, 60.0)
    assert traced == [None, 1, 32, 8, 16]


def test_memory_target_is_hash_neutral_at_its_default():
    assert _config(memory_target_gb=72.0).config_hash() == _config().config_hash()
    assert _config(memory_target_gb=60.0).config_hash() != _config().config_hash()


def _plan(config: RunConfig, cache: TraceCache, **options) -> list:
    return plan_memory(config, plan_stages(config), cache, **options)


def test_auto_chunking_takes_the_most_copies_that_fit(tmp_path, monkeypatch):
    """Traced at every candidate (4, 2, 1 copies per call), auto picks the largest whose step fits the target;
    the recipe (the run folder's derived settings) records the choice, from the cache."""
    monkeypatch.setenv("SEEDFOLD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SEEDFOLD_TRACE", "on")  # a test of tracing itself (the suite turns it off)
    cache = TraceCache(shipped=None)
    traced = {c: _plan(_config("gpu", diffusion_chunk_size=c), cache, trace=True)[0].memory.peak_bytes
              for c in (4, 2, 1)}
    # Halving the copies per call saves until another phase of the step (the losses over all copies, the trunk's
    # backward) holds the peak: at this size 2 and 1 copies per call peak at the same figure.
    assert traced[4] > traced[2] >= traced[1]
    target_gb = (traced[2] + traced[4]) / 2 / 1e9  # 2 copies fit, 4 do not
    config = _config("gpu", diffusion_chunk_size="auto", memory_target_gb=target_gb)
    (plan,) = plan_memory(config, plan_stages(config), cache, trace=True)
    assert (plan.diffusion_chunk, plan.chunk_source, plan.memory.peak_bytes) == (2, "auto", traced[2])
    assert plan.fits_target
    monkeypatch.setenv("SEEDFOLD_TRACE", "off")  # the recipe and the training stage read the cache, trace nothing
    assert resolve(config).chunking == [{"start": 0, "diffusion_chunk_size": 2, "source": "auto (traced)",
                                         "lddt_block_rows": plan.lddt_block_rows, "checkpoint_sublayers": False,
                                         "checkpoint_group": 1}]
    assert stage_architecture(config, plan_stages(config)[0]).policy.diffusion_chunk_size == 2
    roomy = _plan(_config("gpu", diffusion_chunk_size="auto", memory_target_gb=1.0), cache, trace=True)[0]
    assert (roomy.diffusion_chunk, roomy.memory.peak_bytes) == (None, traced[4])  # all copies at once


def _planted_traces(config: RunConfig, gb: float) -> dict:
    """Trace-cache entries of ``gb`` for every trace the plan of ``config``'s stages would read: what a dry-run
    that read the cache would show."""
    keys = []

    def record(arch, shape):
        keys.append(trace_key(arch, shape))
        return StepMemory(int(gb * 1e9), dict.fromkeys(CATEGORIES, 0))

    for stage in plan_stages(config):
        trace_step(config.model.architecture(), step_shape(config, stage), trace=record)
    entry = {"peak_bytes": int(gb * 1e9), "by_category": dict.fromkeys(CATEGORIES, 0) | {"activations": int(gb * 1e9)},
             "cpu_s": 0.0}
    return dict.fromkeys(keys, entry)


def test_a_cpu_dry_run_reads_no_trace_and_makes_none(tmp_path):
    """The mini profile (CPU, with its study planner): the user's cache holds a 123 GB trace of every mini run;
    the dry-run shows "not traced (CPU run)" instead, and the cache file is left as it was (nothing traced)."""
    import json

    from harness.sweep.service import prepare

    cache = tmp_path / "memory_traces.json"
    specs = prepare("sweeps/width_vs_depth.yaml", profile="mini", executor="local").specs
    cache.write_text(json.dumps({k: v for spec in specs for k, v in _planted_traces(spec.config, 123.0).items()}))
    planted = cache.read_bytes()
    config = specs[0].config
    one_block = config.model.architecture().model_copy(update={"n_pairformer_blocks": 1, "n_diffusion_blocks": 1})
    shape = step_shape(config, plan_stages(config)[0])
    assert TraceCache(path=cache, shipped=None).lookup(one_block, shape).peak_gb == 123.0  # there to be read
    result = runner.invoke(app, ["sweep", "sweeps/width_vs_depth.yaml", "--profile", "mini", "--dry-run"],
                           env={"COLUMNS": "400", "SEEDFOLD_CACHE_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "123 GB" not in result.output and "GB traced" not in result.output
    assert result.output.count("32: not traced (CPU run), diff all/4") == len(specs)
    assert cache.read_bytes() == planted and sorted(p.name for p in tmp_path.iterdir()) == [cache.name]


def test_flops_only_estimates_and_cpu_plans_trace_nothing(tmp_path, monkeypatch):
    """estimate(memory=False) (a study's FLOPs per step) leaves even a GPU run's auto chunking unresolved rather
    than trace; a CPU run's plan and recipe (auto: all copies at once) read no cache: no trace is written."""
    monkeypatch.setenv("SEEDFOLD_CACHE_DIR", str(tmp_path))
    size = estimate(_config("gpu", diffusion_chunk_size="auto"), memory=False)
    assert size.memory == [] and size.flops_per_step > 0
    assert size.recipe.chunking == [{"start": 0, "diffusion_chunk_size": None, "source": "auto (not traced)",
                                     "lddt_block_rows": 192, "checkpoint_sublayers": False,
                                     "checkpoint_group": 1}]
    (plan,) = estimate(_config()).memory  # train.accelerator auto: not a GPU run
    assert plan.memory is None and not plan.fits_target
    cpu_auto = _config("cpu", diffusion_chunk_size="auto")
    assert resolve(cpu_auto).chunking == [{"start": 0, "diffusion_chunk_size": None, "lddt_block_rows": 192,
                                           "source": "auto (not traced: all copies on a CPU run)",
                                           "checkpoint_sublayers": False, "checkpoint_group": 1}]
    assert stage_architecture(cpu_auto, plan_stages(cpu_auto)[0]).policy.diffusion_chunk_size is None
    assert list(tmp_path.iterdir()) == []


def test_trace_key_ignores_what_changes_no_tensor():
    shape = step_shape(_config(), plan_stages(_config())[0])
    arch = _config().model.architecture()
    assert trace_key(arch, shape) == trace_key(arch.model_copy(update={"pair_dropout": 0.1}), shape)
    assert trace_key(arch, shape) != trace_key(arch.model_copy(update={"c_z": 32}), shape)


def test_tracing_off_reads_the_cache_only_and_a_forced_trace_is_an_error(tmp_path, monkeypatch):
    """SEEDFOLD_TRACE=off (the suite's setting): a GPU run's plan missing from the cache says so; asking for the
    trace anyway is one error naming it; nothing is traced or written."""
    monkeypatch.setenv("SEEDFOLD_TRACE", "off")
    cache = TraceCache(path=tmp_path / "traces.json", shipped=None)
    config = _config("gpu")
    (plan,) = plan_memory(config, plan_stages(config), cache)
    assert (plan.memory, plan.untraced) == (None, "not in the trace cache")
    shape = step_shape(config, plan_stages(config)[0])
    arch = config.model.architecture()
    with pytest.raises(TracingOff, match=rf"no cached memory trace {trace_key(arch, shape)} \(c_z {arch.c_z}, 1/1 "
                       r"blocks, crop 16/192, 4 copies, all per call\) and SEEDFOLD_TRACE=off"):
        plan_memory(config, plan_stages(config), cache, trace=True)
    assert cache.traced == 0 and not (tmp_path / "traces.json").exists()


def test_fit_check_names_the_run_its_traced_figure_and_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("SEEDFOLD_TRACE", "on")
    cache = TraceCache(path=tmp_path / "traces.json", shipped=None)
    plans = {"tiny": plan_memory(_config(), plan_stages(_config()), cache, trace=True)}
    gb = plans["tiny"][0].memory.peak_gb
    check_fit(plans, gpu_memory_gb=gb / 0.85)  # fits with more than 10 % headroom
    check_fit(plans, gpu_memory_gb=None)  # memory not stated: nothing to check
    with pytest.raises(MemoryFitError) as err:
        check_fit(plans, gpu_memory_gb=gb)
    (line,) = str(err.value).splitlines()
    assert line.startswith(f"run tiny: traced {gb:.1f} GB per GPU at crop 16 (stage from step 0) exceeds "
                           f"{0.9 * gb:.1f} GB (90 % of a {gb:g} GB GPU)")


PAPER_RUNS = ("base", "medium", "large", "deep_pairformer", "deep_structure")


def _paper_plans() -> dict:
    """The paper runs' plans from the shipped cache alone (nothing traced): every stage must be there, else the
    paper tests would spend CPU hours tracing; regenerate with benchmarks/bench_memory_trace.py."""
    from harness.sweep.service import prepare

    specs = prepare("sweeps/width_vs_depth.yaml", profile="paper", executor="local").specs
    plans = {spec.label: _plan(spec.config, TraceCache(path=SHIPPED), trace=False) for spec in specs}
    missing = [f"{label} crop {p.crop_tokens}" for label, stages in plans.items() for p in stages if p.memory is None]
    assert not missing, f"not in harness/memory/traces.json: {missing} (run benchmarks/bench_memory_trace.py)"
    return plans


def test_paper_dry_run_shows_traced_memory_of_both_stages_within_an_80_gb_gpu(tmp_path):
    """Every paper configuration at crop 384 and 640 fits 72 GB (shipped traces, harness/memory/traces.json)."""
    plans = _paper_plans()
    assert set(plans) == set(PAPER_RUNS)
    for label, stages in plans.items():
        assert [p.crop_tokens for p in stages] == [384, 640], label
        assert all(p.memory.peak_gb <= 72.0 for p in stages), (label, [p.memory.peak_gb for p in stages])
    result = runner.invoke(app, ["sweep", "sweeps/width_vs_depth.yaml", "--profile", "paper", "--dry-run"],
                           env={"COLUMNS": "400", "SEEDFOLD_CACHE_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "GPU 80 GB, fits = within 72 GB" in result.output
    assert result.output.count("384: ") == 5 and result.output.count("640: ") == 5
    assert result.output.count("GB traced") == 10
    for stages in plans.values():
        for p in stages:
            chunk = "all" if p.diffusion_chunk is None else p.diffusion_chunk
            sub = ", sub-layer ckpt auto" if p.sublayers else ""
            sub += f", Pairformer ckpt groups of {p.group} auto" if p.group > 1 else ""
            assert (f"{p.crop_tokens}: {p.memory.peak_gb:.3g} GB traced, diff {chunk}/{p.diffusion_batch} auto{sub}, "
                    f"lDDT {p.lddt_block_rows}") in result.output
    assert "DOES NOT FIT" not in result.output
    assert list(tmp_path.iterdir()) == []  # read from the shipped cache, nothing traced


def test_a_run_that_does_not_fit_is_refused_before_submission(tmp_path, monkeypatch):
    plans = _paper_plans()
    monkeypatch.setenv("SEEDFOLD_CACHE_DIR", str(tmp_path / "cache"))
    result = runner.invoke(app, ["sweep", "sweeps/width_vs_depth.yaml", "--profile", "paper", "--executor", "local",
                                 "--gpu-memory", "40", "--set", f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code != 0 and isinstance(result.exception, MemoryFitError)
    lines = str(result.exception).splitlines()
    assert lines and all(line.startswith("run ") and "exceeds 36.0 GB (90 % of a 40 GB GPU)" in line for line in lines)
    worst = {label: max(stages, key=lambda p: p.memory.peak_bytes) for label, stages in plans.items()}
    assert sorted(lines) == sorted(
        f"run {label}: traced {p.memory.peak_gb:.1f} GB per GPU at crop {p.crop_tokens} (stage from step "
        f"{p.start}) exceeds 36.0 GB (90 % of a 40 GB GPU); set model.policy.memory_target_gb: 36 with "
        "diffusion_chunk_size, checkpoint_sublayers and checkpoint_group auto (or chunk by hand), or --force"
        for label, p in worst.items() if p.memory.peak_gb > 36.0)
    assert not (tmp_path / "runs").exists()  # nothing submitted, no run folder written
