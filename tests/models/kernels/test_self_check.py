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


def test_the_problem_is_multi_tile_in_the_models_layouts():
    """n = 150: three 64-wide tiles (ragged last); q, k, v dense head-split views (not contiguous), the bias a
    permutation of a (B, J, J, H) projection, the mask a transposed view with a fully padded row."""
    (q, k, v, bias), mask, grad_out = self_check._problem(torch.device("cpu"), torch.float32, 16)
    assert q.shape == (1, 3, 2, 150, 16) and 150 > 2 * 64
    assert not q.is_contiguous() and torch.empty_like(q).stride() == q.stride()
    assert bias.stride()[-1] == 2 and mask.stride()[-1] == 150
    assert not mask[0, 2].any() and mask[0, 0].sum() == 141


@needs_interpreter
def test_a_kernel_wrong_past_the_first_key_tile_fails_the_check(monkeypatch):
    """A kernel that only sees the first 64 keys (a broken multi-tile loop) passed the old n = 40 check."""
    real = ops.vanilla_attention
    first_tile = torch.arange(150) < 64
    monkeypatch.setattr(ops, "vanilla_attention", lambda q, k, v, b, m, s: real(q, k, v, b, m & first_tile, s))
    result = self_check.run_self_check("vanilla", torch.device("cpu"), torch.float32, 16)
    assert not result.passed and result.max_rel_error > 0.1


@needs_interpreter
def test_check_inside_bf16_autocast_keeps_an_fp64_reference():
    """The dispatcher may run the check inside the first (bf16 autocast) forward: the reference must not
    drop to bf16 there (it did: a correct fp32 kernel then failed, or passed a loose bar)."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = self_check.run_self_check("vanilla", torch.device("cpu"), torch.float32, 16)
    assert result.passed and result.max_rel_error < 1e-5


def test_cuda_and_cuda_with_its_index_are_one_key(monkeypatch):
    """``kernel_choice`` is given "cuda", the dispatcher sees q on "cuda:0": one check, not two."""
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    key = self_check.check_key("gated", "cuda", torch.bfloat16, 32)
    assert key == self_check.check_key("gated", torch.device("cuda", 0), torch.bfloat16, 32)
    assert key == ("cuda:0", torch.bfloat16, 32, "gated")


@needs_interpreter
def test_auto_keeps_triton_after_a_passing_check(monkeypatch):
    monkeypatch.setattr(dispatch, "auto_eligible", lambda q: True)
    calls = []
    real = ops.vanilla_attention
    monkeypatch.setattr(ops, "vanilla_attention", lambda *a: calls.append(1) or real(*a))
    q, k, v, bias, mask = make_inputs(2, 2, 12, 16)
    out = triangle_attention(q, k, v, bias, mask, variant="vanilla", impl="auto")
    torch.testing.assert_close(out, triangle_attention_torch(q, k, v, bias, mask, variant="vanilla"))
    assert len(calls) == 3  # the self-check (exact and TF32 dots for fp32), then the call itself
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


def test_kernel_choice_reports_every_dtype_the_run_uses():
    """A bf16 trunk with an fp32 confidence head: both dtypes are decided and recorded."""
    choice = self_check.kernel_choice("auto", "gated", "cpu", (torch.bfloat16, torch.float32), 32)
    assert choice == {"kernel": "torch", "self_check": "bfloat16 not run: auto uses the PyTorch path on cpu; "
                      "float32 not run: auto uses the PyTorch path on cpu"}


@needs_interpreter
def test_one_check_serves_the_run_record_and_the_dispatcher(monkeypatch):
    """The check run at run start (outside autocast) is the one the first training forward finds: it does not
    rerun inside bf16 autocast, and the dispatcher runs the path the record names."""
    monkeypatch.setattr(dispatch, "auto_eligible", lambda q: True)
    runs = []
    real = self_check.run_self_check
    monkeypatch.setattr(self_check, "run_self_check", lambda *a: runs.append(a) or real(*a))
    recorded = self_check.self_check("vanilla", "cpu", torch.float32, 16)
    q, k, v, bias, mask = make_inputs(2, 2, 12, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        triangle_attention(q, k, v, bias, mask, variant="vanilla", impl="auto")
    assert len(runs) == 1 and recorded.passed
    assert dispatch.paths_used()[("vanilla", torch.float32, 16)] == "triton"
