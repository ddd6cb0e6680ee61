"""One-time parity self-check of the Triton kernels before ``impl="auto"`` trusts them on a device.

The kernels are verified under the CPU interpreter, but a GPU compiles them with its own code generator, so the
first call of ``auto`` per (device, dtype, head dim, variant) runs the kernel and the PyTorch reference on a
small padded problem, forward and backward, and keeps the Triton path only if every output and gradient agrees
(fp32: 1e-3 of the scale, which admits TF32 dots; bf16/fp16: 3e-2). Otherwise ``auto`` uses the reference and
logs one warning. ``kernel_choice`` reports the decision for a run's params (harness/train/run.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 3e-2, torch.float16: 3e-2}


@dataclass(frozen=True)
class SelfCheck:
    """Result of one self-check: ``passed``, the worst error relative to the reference's scale, and why."""

    passed: bool
    max_rel_error: float | None
    detail: str


_results: dict[tuple, SelfCheck] = {}


def _problem(device: torch.device, dtype: torch.dtype, head_dim: int, seed: int = 0):
    """q, k, v (1, 3, 2, 40, D), bias (1, 2, 40, 40), a mask with padded keys and a hole, and dO."""
    g = torch.Generator().manual_seed(seed)
    n, shape = 40, (1, 3, 2, 40, head_dim)
    tensors = [torch.randn(shape, generator=g) for _ in range(3)] + [torch.randn(1, 2, n, n, generator=g)]
    mask = torch.ones(1, 3, n, dtype=torch.bool)
    mask[:, :, -7:] = False
    mask[:, 1, 5] = False
    grad_out = torch.randn(shape, generator=g)
    to = dict(device=device, dtype=dtype)
    return [t.to(**to) for t in tensors], mask.to(device), grad_out.to(**to)


def run_self_check(variant: str, device: torch.device, dtype: torch.dtype, head_dim: int) -> SelfCheck:
    """Kernel vs reference (fp32, on the same rounded inputs) for output and the four gradients."""
    from models.kernels.ops import gated_attention, vanilla_attention
    from models.triangle_attention_ref import triangle_attention_torch

    tensors, mask, grad_out = _problem(device, dtype, head_dim)
    scale = head_dim**-0.5

    def kernel(q, k, v, bias):
        if variant == "vanilla":
            return vanilla_attention(q, k, v, bias, mask, scale)
        return gated_attention(q, k, v, torch.sigmoid(bias), mask, scale)

    def reference(q, k, v, bias):
        return triangle_attention_torch(q, k, v, bias, mask, variant=variant)

    def outputs(fn, inputs, g):
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = fn(*leaves)
        return [out.detach(), *torch.autograd.grad(out, leaves, g)]

    try:
        with torch.enable_grad():
            got = outputs(kernel, tensors, grad_out)
            want = outputs(reference, [t.float() for t in tensors], grad_out.float())
    except Exception as exc:  # a compile or launch failure is a failed check, reported, not a crash
        return SelfCheck(False, None, f"kernel raised {type(exc).__name__}: {exc}")
    worst, worst_name = 0.0, ""
    for name, a, e in zip(("out", "dq", "dk", "dv", "dbias"), got, want, strict=True):
        if not torch.isfinite(a).all():
            return SelfCheck(False, None, f"{name} has non-finite values")
        rel = ((a.float() - e).abs().max() / e.abs().max().clamp_min(1e-12)).item()
        if rel > worst:
            worst, worst_name = rel, name
    tol = TOLERANCE[dtype]
    passed = worst <= tol
    return SelfCheck(passed, worst, f"max error {worst:.2g} ({worst_name}) {'≤' if passed else '>'} {tol:g} of scale")


def self_check(variant: str, device: torch.device, dtype: torch.dtype, head_dim: int) -> SelfCheck:
    """The cached result for this (device, dtype, head dim, variant), running the check the first time."""
    key = (str(device), dtype, head_dim, variant)
    if key not in _results:
        result = run_self_check(variant, device, dtype, head_dim)
        _results[key] = result
        if not result.passed:
            log.warning(
                "Triton %s triangle attention failed its self-check on %s (%s, head dim %d): %s; "
                "impl='auto' uses the PyTorch path there", variant, device, dtype, head_dim, result.detail,
            )  # fmt: skip
    return _results[key]


def cached_results() -> dict[tuple, SelfCheck]:
    """Every self-check run in this process, by (device, dtype, head dim, variant)."""
    return dict(_results)


def clear() -> None:
    """Forget cached results (tests)."""
    _results.clear()


def kernel_choice(impl: str, variant: str, device: str | torch.device, dtype: torch.dtype, head_dim: int) -> dict:
    """What triangle attention will run for a model of ``variant``/``impl`` on ``device``, for a run's record:
    {"kernel": "triton" | "torch", "self_check": why / the check's result}. On CUDA with ``auto`` (or
    ``triton``) this runs the self-check now, so the decision is known before the first step."""
    from models.kernels.dispatch import _MAX_TRITON_HEAD_DIM, _TRITON_DTYPES
    from models.kernels.launch_config import INTERPRETING, triton_importable

    device = torch.device(device)
    if variant == "additive":
        return {"kernel": "torch", "self_check": "not needed: the additive form has no Triton kernel"}
    if impl == "torch":
        return {"kernel": "torch", "self_check": "not needed: kernel_impl=torch"}
    if device.type != "cuda":
        if impl == "auto":
            return {"kernel": "torch", "self_check": f"not run: auto uses the PyTorch path on {device.type}"}
        kernel = "triton (interpreter)" if INTERPRETING else "unavailable (impl=triton needs CUDA)"
        return {"kernel": kernel, "self_check": "not run: kernel_impl=triton forces the kernels"}
    if not triton_importable() or dtype not in _TRITON_DTYPES or head_dim > _MAX_TRITON_HEAD_DIM:
        why = "triton not installed" if not triton_importable() else f"{dtype}, head dim {head_dim} unsupported"
        return {"kernel": "torch" if impl == "auto" else "unavailable", "self_check": f"not run: {why}"}
    result = self_check(variant, device, dtype, head_dim)
    verdict = ("passed: " if result.passed else "failed: ") + result.detail
    kernel = "triton" if (result.passed or impl == "triton") else "torch"
    return {"kernel": kernel, "self_check": verdict}
