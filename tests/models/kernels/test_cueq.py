"""``kernel_impl: cueq`` (NVIDIA cuEquivariance): one clear error at config validation without the package, on
a CPU accelerator or with a linear variant; the dispatcher and the module refuse to run it where it cannot."""

from pathlib import Path

import pytest
import torch
import yaml
from test_kernel_dispatch import make_inputs

from harness.config import RunConfig, load_record, parse_config
from harness.errors import ConfigError
from models.kernels import KernelUnavailableError, triangle_attention
from models.kernels.cueq import cueq_installed
from models.kernels.self_check import kernel_choice
from models.modules.triangle_multiplication import TriangleMultiplication

needs_no_cueq = pytest.mark.skipif(cueq_installed(), reason="cuequivariance_torch is installed here")


def _config(model: dict, train: dict | None = None) -> RunConfig:
    raw = {"model": {"preset": "base", "miniature": True, **model}, "train": train or {}}
    return parse_config(RunConfig, raw, "run.yaml")


@needs_no_cueq
def test_config_without_the_package_is_one_clear_error():
    with pytest.raises(ConfigError) as err:
        _config({"kernel_impl": "cueq", "triangle_attention": "vanilla"}, {"accelerator": "gpu"})
    (problem,) = err.value.problems  # one error, naming the key and what to install
    assert "model.kernel_impl: cueq needs the cuequivariance_torch package (pip install cuequivariance-torch" in problem


def test_config_with_a_linear_variant_is_an_error():
    with pytest.raises(ConfigError, match="cueq needs model.triangle_attention: vanilla"):
        _config({"kernel_impl": "cueq", "triangle_attention": "gated"})


def test_config_on_a_cpu_accelerator_is_an_error(monkeypatch):
    import models.kernels.cueq as cueq

    monkeypatch.setattr(cueq, "cueq_installed", lambda: True)  # the package present: the CPU is what is wrong
    with pytest.raises(ConfigError, match="cueq runs on CUDA only; train.accelerator is cpu"):
        _config({"kernel_impl": "cueq", "triangle_attention": "vanilla"}, {"accelerator": "cpu"})


def test_existing_kernel_impl_values_keep_their_run_keys():
    """Adding "cueq" to the allowed values changes no recorded run key: runs recorded before it (the committed
    study example) read back with the hash their folder is named by, with their own kernel_impl and with the
    other values that existed then."""
    runs = sorted((Path(__file__).parents[3] / "docs/examples/width_vs_depth_study/runs/width_vs_depth").glob("*-*"))
    for run in runs[:3]:
        raw = yaml.safe_load((run / "config.yaml").read_text())
        raw.pop("derived", None)
        config = load_record(raw, str(run))
        assert config.model.kernel_impl == "auto" and config.config_hash() == run.name.rsplit("-", 1)[1]
        for impl in ("torch", "triton"):  # the other values then: a different run, as before
            other = load_record({**raw, "model": {**raw["model"], "kernel_impl": impl}}, str(run))
            assert other.config_hash() not in (config.config_hash(), "")


def test_dispatcher_refuses_cueq_on_cpu_tensors():
    q, k, v, bias, mask = make_inputs()
    with pytest.raises(KernelUnavailableError, match="impl='cueq' cannot run here"):
        triangle_attention(q, k, v, bias, mask, variant="vanilla", impl="cueq")


def test_module_refuses_cueq_on_cpu_tensors():
    module = TriangleMultiplication(8, 8, outgoing=True, kernel_impl="cueq")
    with pytest.raises(KernelUnavailableError, match="kernel_impl='cueq' cannot run here"):
        module(torch.randn(1, 4, 4, 8), torch.ones(1, 4, 4, dtype=torch.bool))


@needs_no_cueq
def test_run_record_says_why_cueq_is_unavailable():
    choice = kernel_choice("cueq", "vanilla", "cpu", torch.bfloat16, 32)
    assert choice["kernel"] == "unavailable"
    assert choice["self_check"].startswith("not run: cuequivariance_torch is not installed")
