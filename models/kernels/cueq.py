"""NVIDIA cuEquivariance as a backend (``model.kernel_impl: cueq``): its softmax triangle attention and its
fused triangle multiplicative update, as Boltz, OpenFold3 and Protenix use them.

``cuequivariance_torch`` (with its CUDA ops package, e.g. ``cuequivariance-ops-torch-cu12``) is an optional
dependency, installed by the user on a CUDA machine. It has no kernel for the linear (additive, gated)
variants, so ``cueq`` requires ``triangle_attention: vanilla``; configuration validation rejects it without
the package, on a CPU accelerator or with another variant (``cueq_config_error``). The calls:

- ``cuequivariance_torch.triangle_attention(q, k, v, bias, mask, scale)`` with q, k, v (B, I, H, J, D) — its
  (B, N, H, Q, D) —, bias (B, 1, H, J, J) and the key mask (B, I, 1, 1, J), True = attend;
- ``cuequivariance_torch.triangle_multiplicative_update(x, direction, mask, norm_in_weight, norm_in_bias,
  p_in_weight, g_in_weight, norm_out_weight, norm_out_bias, p_out_weight, g_out_weight, eps)`` with our
  module's weights: p_in / g_in stack the a and b projections (a first), as its (2·h, c) weights expect.

The same parity self-check as the Triton kernels' (``self_check``) compares both with the PyTorch path before
a run records ``cueq`` (``cueq_choice``).
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

PACKAGE = "cuequivariance_torch"


def cueq_installed() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def cueq_unavailable(device: torch.device | str, variant: str = "vanilla") -> str | None:
    """Why cuEquivariance cannot run triangle attention of ``variant`` on ``device`` (None: it can)."""
    if variant != "vanilla":
        return f"cuEquivariance has no kernel for the {variant} variant (triangle_attention: vanilla only)"
    if not cueq_installed():
        return f"{PACKAGE} is not installed (pip install cuequivariance-torch cuequivariance-ops-torch-cu12)"
    if torch.device(device).type != "cuda":
        return f"its kernels need CUDA tensors, got {torch.device(device).type}"
    return None


def cueq_config_error(variant: str, accelerator: str) -> str | None:
    """Why a run config with ``kernel_impl: cueq`` is invalid (None: valid); checked at config validation.
    An ``accelerator: auto`` config is valid where it is validated without a GPU (a login node); the run then
    fails at start, before any step, if it lands on a machine without CUDA."""
    if variant != "vanilla":
        return (f"model.kernel_impl: cueq needs model.triangle_attention: vanilla "
                f"(cuEquivariance has no {variant} kernel)")  # fmt: skip
    if not cueq_installed():
        return (f"model.kernel_impl: cueq needs the {PACKAGE} package (pip install cuequivariance-torch "
                "cuequivariance-ops-torch-cu12), which is not installed")  # fmt: skip
    if accelerator == "cpu":
        return "model.kernel_impl: cueq runs on CUDA only; train.accelerator is cpu"
    return None


def cueq_triangle_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    """softmax(scale·q kᵀ + bias, masked keys out) v through cuEquivariance; shapes as ``dispatch.triangle_attention``.
    A row with every key masked gives 0, as the PyTorch path (cuEquivariance's -1e9 fill would average v)."""
    from cuequivariance_torch import triangle_attention

    b, i, h, j, _ = q.shape
    if mask is None:
        mask = torch.ones(b, i, j, dtype=torch.bool, device=q.device)
    out = triangle_attention(q, k, v, bias.unsqueeze(1), mask[:, :, None, None, :], scale=scale)
    return out * mask.any(-1)[:, :, None, None, None].to(out.dtype)


def cueq_triangle_multiplication(module, z: Tensor, pair_mask: Tensor) -> Tensor:
    """``module`` (a ``TriangleMultiplication``) on z (B, N, N, c_z) with pair_mask (B, N, N) through
    cuEquivariance's fused update; the same weights, so the same function as ``module``'s own forward."""
    from cuequivariance_torch import triangle_multiplicative_update

    return triangle_multiplicative_update(
        z, direction="outgoing" if module.outgoing else "incoming", mask=pair_mask.to(z.dtype),
        norm_in_weight=module.norm_in.weight, norm_in_bias=module.norm_in.bias,
        p_in_weight=torch.cat([module.proj_a.weight, module.proj_b.weight]),
        g_in_weight=torch.cat([module.gate_a.weight, module.gate_b.weight]),
        norm_out_weight=module.norm_out.weight, norm_out_bias=module.norm_out.bias,
        p_out_weight=module.proj_out.weight, g_out_weight=module.gate_out.weight, eps=module.norm_in.eps,
    )  # fmt: skip


def cueq_choice(variant: str, device: torch.device, dtype: torch.dtype, head_dim: int) -> dict:
    """The record of a ``kernel_impl: cueq`` run: cuEquivariance where it can run, after its parity check."""
    why = cueq_unavailable(device, variant)
    if why:
        return {"kernel": "unavailable", "self_check": f"not run: {why}"}
    from models.kernels.self_check import self_check

    result = self_check("cueq:" + variant, device, dtype, head_dim)
    return {"kernel": "cueq", "self_check": ("passed: " if result.passed else "failed: ") + result.detail}


def trimul_parity(device: torch.device, dtype: torch.dtype) -> float:
    """Largest error of ``cueq_triangle_multiplication`` against the module's own float64 forward, relative to
    its scale, on a padded (1, 150, 150, 32) pair (both directions)."""
    from models.modules.triangle_multiplication import TriangleMultiplication

    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 150, 150, 32, generator=g)
    mask = torch.ones(1, 150, 150, dtype=torch.bool)
    mask[:, 140:], mask[:, :, 140:] = False, False
    worst = 0.0
    for outgoing in (True, False):
        module = TriangleMultiplication(32, 32, outgoing=outgoing)
        for p in module.parameters():  # AF3's init zeroes the output projection: make every weight count
            p.data = torch.randn(p.shape, generator=g) * p.shape[-1] ** -0.5
        want = module.double()(z.double(), mask)
        got = cueq_triangle_multiplication(module.to(device, dtype), z.to(device, dtype), mask.to(device))
        worst = max(worst, ((got.double().cpu() - want).abs().max() / want.abs().max()).item())
    return worst
