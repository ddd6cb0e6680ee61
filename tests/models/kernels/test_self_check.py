"""``impl="auto"`` trusts the Triton path only after a parity self-check (run here by the interpreter, with
CUDA eligibility forced on CPU tensors), falls back to the reference with a warning when the check fails, and
reports the choice for a run's record."""

import logging

import pytest
import torch
from test_triton_triangle_attention import make_inputs

import models.kernels.dispatch as dispatch
import models.kernels.ops as ops
from models.kernels import self_check, triangle_attention
from models.kernels.launch_config import triton_can_run
from models.triangle_attention_ref import triangle_attention_torch

needs_interpreter = pytest.mark.skipif(not triton_can_run(torch.device("cpu")), reason="needs TRITON_INTERPRET=1")


@pytest.fixture(autouse=True)
def fresh_cache():
    self_check.clear()
    yield
    self_check.clear()


@needs_interpreter
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_correct_kernels_pass_with_fp32_level_error(variant):
    result = self_check.run_self_check(variant, torch.device("cpu"), torch.float32, 16)
    assert result.passed, result.detail
    assert result.max_rel_error < 1e-5


@needs_interpreter
def test_auto_keeps_triton_after_a_passing_check(monkeypatch):
    monkeypatch.setattr(dispatch, "auto_eligible", lambda q: True)
    calls = []
    real = ops.vanilla_attention
    monkeypatch.setattr(ops, "vanilla_attention", lambda *a: calls.append(1) or real(*a))
    q, k, v, bias, mask = make_inputs(2, 2, 12, 16)
    out = triangle_attention(q, k, v, bias, mask, variant="vanilla", impl="auto")
    torch.testing.assert_close(out, triangle_attention_torch(q, k, v, bias, mask, variant="vanilla"))
    assert len(calls) == 2  # once in the self-check, once for the call itself
    (result,) = self_check.cached_results().values()
    assert result.passed


@needs_interpreter
def test_auto_falls_back_to_torch_with_a_warning_when_the_kernel_is_wrong(monkeypatch, caplog):
    monkeypatch.setattr(dispatch, "auto_eligible", lambda q: True)
    real = ops.vanilla_attention
    monkeypatch.setattr(ops, "vanilla_attention", lambda *a: real(*a) * 1.01)  # a 1% error: over 1e-3
    q, k, v, bias, mask = make_inputs(2, 2, 12, 16)
    with caplog.at_level(logging.WARNING, logger="models.kernels.self_check"):
        out = triangle_attention(q, k, v, bias, mask, variant="vanilla", impl="auto")
        triangle_attention(q, k, v, bias, mask, variant="vanilla", impl="auto")
    torch.testing.assert_close(out, triangle_attention_torch(q, k, v, bias, mask, variant="vanilla"))
    warnings = [r for r in caplog.records if "failed its self-check" in r.getMessage()]
    assert len(warnings) == 1  # one check per (device, dtype, head dim, variant), one warning
    (result,) = self_check.cached_results().values()
    assert not result.passed and 0.005 < result.max_rel_error < 0.05


def test_kernel_raising_is_a_failed_check_not_a_crash(monkeypatch):
    def broken(*args):
        raise RuntimeError("no kernel image for this device")

    monkeypatch.setattr(ops, "gated_attention", broken)
    result = self_check.run_self_check("gated", torch.device("cpu"), torch.float32, 16)
    assert not result.passed and "no kernel image" in result.detail


@pytest.mark.parametrize(
    ("impl", "variant", "kernel", "why"),
    [
        ("auto", "vanilla", "torch", "not run: auto uses the PyTorch path on cpu"),
        ("torch", "gated", "torch", "not needed: kernel_impl=torch"),
        ("auto", "additive", "torch", "not needed: the additive form has no Triton kernel"),
    ],
)
def test_kernel_choice_on_cpu(impl, variant, kernel, why):
    assert self_check.kernel_choice(impl, variant, "cpu", torch.float32, 32) == {"kernel": kernel, "self_check": why}
