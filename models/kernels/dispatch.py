"""``triangle_attention``: one entry point for every variant, with ``impl="auto" | "torch" | "triton"``.

``torch`` is the pure-PyTorch reference (``models.triangle_attention_ref``); ``triton`` runs the kernels of
this package (on CUDA, or on CPU under ``TRITON_INTERPRET=1``); ``auto`` picks Triton for CUDA tensors when
Triton is installed and the kernel passed its one-time parity self-check on that device, dtype and head dim
(``models.kernels.self_check``; a failure logs a warning), and the reference otherwise; ``cueq`` runs NVIDIA
cuEquivariance's softmax kernel (``models.kernels.cueq``; vanilla only, CUDA only).

The additive linear form has no Triton kernel: it is two batched matrix products (the right-product trick
φ(q)(φ(k)ᵀv) and the shared ψ(bias)·v), which the reference already computes with O(n²) memory through
cuBLAS/MKL, so every ``impl`` runs that path for it (BENCHMARKS.md, "Triangle-attention kernels").
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from models.kernels.errors import KernelUnavailableError, TriangleAttentionInputError
from models.kernels.launch_config import INTERPRETING, triton_can_run, triton_importable, triton_version_problem

Variant = Literal["vanilla", "additive", "gated"]
BiasActivation = Literal["relu", "identity", "softplus"]
Impl = Literal["auto", "torch", "triton", "cueq"]

_VARIANTS = ("vanilla", "additive", "gated")
_ACTIVATIONS = ("relu", "identity", "softplus")
_IMPLS = ("auto", "torch", "triton", "cueq")
_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MAX_TRITON_HEAD_DIM = 128


def triangle_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    bias: Tensor,
    mask: Tensor | None,
    *,
    variant: Variant,
    bias_activation: BiasActivation = "relu",
    impl: Impl = "auto",
) -> Tensor:
    """Triangle attention of each row i of a pair tensor, before the gate, LayerNorm and output projection.

    Args:
        q, k, v: (B, I, H, J, D), I = row i, J = position within the row; any strides (ending-node attention
            passes views of the transposed pair tensor and they are read in place).
        bias: (B, H, J, J) pair bias shared by all rows; bias[b, h, j, k] joins query j and key k.
        mask: (B, I, J) bool key mask, False = padded key; None = no padding.
        variant: "vanilla" softmax(q kᵀ + bias) v; "additive" relu(q)(relu(k)ᵀ v) + ψ(bias) v;
            "gated" (relu(q) relu(k)ᵀ ⊙ σ(bias)) v. q is scaled by D**-0.5 in all three; masked keys get
            -inf logits (vanilla) or zero k and v (linear forms); a row with every key masked gives 0.
        bias_activation: ψ of the additive form: "relu", "identity" or "softplus".
        impl: "auto", "torch", "triton" or "cueq" (see the module docstring).

    Returns:
        (B, I, H, J, D) in q's dtype.
    """
    _check_inputs(q, k, v, bias, mask, variant, bias_activation, impl)
    path = "torch" if variant == "additive" else _resolve(impl, q, variant)
    _used[(variant, q.dtype, q.shape[-1])] = path
    if path == "cueq":
        from models.kernels.cueq import cueq_triangle_attention

        return cueq_triangle_attention(q, k, v, bias, mask, scale=q.shape[-1] ** -0.5)
    if path == "torch":
        from models.triangle_attention_ref import triangle_attention_torch

        if mask is None:
            mask = torch.ones(q.shape[:2] + q.shape[3:4], dtype=torch.bool, device=q.device)
        return triangle_attention_torch(q, k, v, bias, mask, variant=variant, bias_activation=bias_activation)

    from models.kernels.ops import gated_attention, vanilla_attention

    scale = q.shape[-1] ** -0.5
    # The kernels read the bias along keys; the module's bias is a (B, J, J, H) projection permuted to
    # (B, H, J, J), stride H along keys. One O(n²) copy here, which autograd undoes for the gradient.
    bias = bias.contiguous()
    if variant == "vanilla":
        return vanilla_attention(q, k, v, bias, mask, scale)
    return gated_attention(q, k, v, torch.sigmoid(bias), mask, scale)


_used: dict[tuple, str] = {}


def paths_used() -> dict[tuple, str]:
    """What ran in this process, by (variant, dtype, head dim): "torch", "triton" or "cueq" (the last call's)."""
    return dict(_used)


def auto_eligible(q: Tensor) -> bool:
    """Whether ``auto`` considers Triton for ``q`` at all: CUDA, Triton installed, a kernel dtype and head dim."""
    return (
        q.is_cuda and triton_importable() and q.dtype in _TRITON_DTYPES and q.shape[-1] <= _MAX_TRITON_HEAD_DIM
    )


def _auto_uses_triton(q: Tensor, variant: str) -> bool:
    """Eligible, and the one-time parity self-check for (device, dtype, head dim, variant) passed. Under
    ``torch.compile`` tracing no check can run: a cached result decides, else Triton is trusted."""
    if not auto_eligible(q):
        return False
    from models.kernels import self_check

    key = self_check.check_key(variant, q.device, q.dtype, q.shape[-1])
    if torch.compiler.is_compiling():
        cached = self_check.cached_results().get(key)
        return cached is None or cached.passed
    return self_check.self_check(variant, q.device, q.dtype, q.shape[-1]).passed


def _resolve(impl: Impl, q: Tensor, variant: str) -> str:
    """The implementation that runs: "torch", "triton" or "cueq"."""
    if impl == "torch":
        return "torch"
    if impl == "cueq":
        from models.kernels.cueq import cueq_unavailable

        why = cueq_unavailable(q.device, variant)
        if why:
            raise KernelUnavailableError(f"impl='cueq' cannot run here: {why}")
        return "cueq"
    if impl == "auto":
        return "triton" if _auto_uses_triton(q, variant) else "torch"
    if not triton_can_run(q.device):
        if not triton_importable():
            why = triton_version_problem()
        elif not INTERPRETING:
            why = f"tensors are on {q.device.type} and TRITON_INTERPRET=1 was unset when the kernels loaded"
        else:
            why = f"Triton cannot run on {q.device.type} tensors"

        raise KernelUnavailableError(f"impl='triton' cannot run here: {why}; use impl='torch' or 'auto'")
    if q.dtype not in _TRITON_DTYPES:
        raise TriangleAttentionInputError(
            f"impl='triton' supports float32, bfloat16 and float16 inputs; got q of dtype {q.dtype}"
        )
    if q.shape[-1] > _MAX_TRITON_HEAD_DIM:
        raise TriangleAttentionInputError(
            f"impl='triton' supports head dim D ≤ {_MAX_TRITON_HEAD_DIM}; got q of shape {tuple(q.shape)}"
        )
    return "triton"


def _check_inputs(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None,
    variant: str, bias_activation: str, impl: str,
) -> None:
    """Raise TriangleAttentionInputError naming the first argument that breaks the contract."""
    for name, value, allowed in (
        ("variant", variant, _VARIANTS),
        ("bias_activation", bias_activation, _ACTIVATIONS),
        ("impl", impl, _IMPLS),
    ):
        if value not in allowed:
            raise TriangleAttentionInputError(f"{name}={value!r}; expected one of {', '.join(allowed)}")
    if q.dim() != 5:
        raise TriangleAttentionInputError(f"q must be (B, I, H, J, D); got shape {tuple(q.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.shape != q.shape:
            raise TriangleAttentionInputError(
                f"{name} shape {tuple(t.shape)} differs from q shape {tuple(q.shape)} (B, I, H, J, D)"
            )
        if t.dtype != q.dtype or t.device != q.device:
            raise TriangleAttentionInputError(
                f"{name} is {t.dtype} on {t.device}; expected q's {q.dtype} on {q.device}"
            )
    if not q.is_floating_point():
        raise TriangleAttentionInputError(f"q, k, v must be floating point; got {q.dtype}")
    b, i, h, j, _ = q.shape
    if tuple(bias.shape) != (b, h, j, j) or not bias.is_floating_point() or bias.device != q.device:
        raise TriangleAttentionInputError(
            f"bias must be a floating (B, H, J, J) = {(b, h, j, j)} tensor on {q.device}; "
            f"got {bias.dtype} {tuple(bias.shape)} on {bias.device}"
        )
    if mask is not None and (
        tuple(mask.shape) != (b, i, j) or mask.dtype != torch.bool or mask.device != q.device
    ):
        raise TriangleAttentionInputError(
            f"mask must be a bool (B, I, J) = {(b, i, j)} tensor on {q.device}; "
            f"got {mask.dtype} {tuple(mask.shape)} on {mask.device}"
        )
