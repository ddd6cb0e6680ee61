"""Pure-PyTorch triangle attention: the reference for the Triton kernels in ``models.kernels``.

Shapes (per call; the module chunks over rows I and transposes for ending-node attention):
    q, k, v: (B, I, H, J, D)   I = row i of the pair tensor, J = position within the row, D = head dim
    bias:    (B, H, J, J)      pair bias B = Linear(z), shared by every row i
    mask:    (B, I, J) bool    key mask, False = padded key
    returns  (B, I, H, J, D)   the attention result before gate, LayerNorm and output projection

Variants (SPEC.md §2.5); q is scaled by D**-0.5 in all of them:
    vanilla   softmax(q kᵀ + bias) v, masked keys at -inf; rows whose keys are all masked give 0, not NaN
    additive  φ(q) (φ(k)ᵀ v) + ψ(bias) v, φ = ReLU, ψ = ``bias_activation``; the first term uses the
              right-product trick (O(J·D²) per row) and the second is one (J×J)·(J×D) product per head shared
              by all rows, so the (B, I, H, J, J) tensor is never built
    gated     (φ(q) φ(k)ᵀ ⊙ σ(bias)) v

The D**-0.5 on q is a deviation in the additive form, where SeedFold's formula has none: ReLU is positively
homogeneous, so φ(q/√D) = φ(q)/√D and the linear term enters at 1/√D of the paper's weight against ψ(bias)·v.
It is kept on purpose: the learnt q projection can absorb any constant factor (the same function class), so it
changes only the starting balance of the two terms (at init the linear term is √D ≈ 5.7x smaller for D = 32)
and the step size of that factor, not what the model can express; the recorded additive runs were trained with
it and the Triton kernels compute it the same way. In the gated form the factor is uniform over the scores and
the LayerNorm after the attention removes it; in the vanilla form it is AF3's softmax temperature.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Variant = Literal["vanilla", "additive", "gated"]
BiasActivation = Literal["relu", "identity", "softplus"]


def bias_psi(bias: Tensor, activation: BiasActivation) -> Tensor:
    """ψ of the additive form, elementwise on the pair bias (B, H, J, J)."""
    if activation == "relu":
        return F.relu(bias)
    if activation == "identity":
        return bias
    if activation == "softplus":
        return F.softplus(bias)
    raise ValueError(f"bias_activation={activation!r}; expected 'relu', 'identity' or 'softplus'")


def _check(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor) -> None:
    if q.dim() != 5 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must share one (B, I, H, J, D) shape; got {q.shape}, {k.shape}, {v.shape}")
    b, i, h, j, _ = q.shape
    if bias.shape != (b, h, j, j):
        raise ValueError(f"bias shape {tuple(bias.shape)}; expected {(b, h, j, j)}")
    if mask.shape != (b, i, j) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool of shape {(b, i, j)}; got {mask.dtype} {tuple(mask.shape)}")


def _vanilla(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor) -> Tensor:
    key_mask = mask[:, :, None, None, :]  # (B, I, 1, 1, J)
    # Bias and mask go into the (B, I, H, J, J) logits in place: the product's backward needs only q and k,
    # and two fewer temporaries of the largest tensor of the block save time and memory traffic on CPU.
    logits = torch.matmul(q, k.transpose(-1, -2))
    logits += bias[:, None].to(q.dtype)
    # A finite fill keeps all-masked rows NaN-free; their output is zeroed below.
    logits.masked_fill_(~key_mask, torch.finfo(logits.dtype).min)
    weights = torch.softmax(logits, dim=-1)
    out = torch.matmul(weights, v)
    any_key = mask.any(dim=-1)[:, :, None, None, None]  # (B, I, 1, 1, 1)
    return out * any_key.to(out.dtype)


def _additive(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor, activation: BiasActivation
) -> Tensor:
    key_mask = mask[:, :, None, :, None].to(q.dtype)  # (B, I, 1, J, 1)
    phi_k = F.relu(k) * key_mask
    v = v * key_mask
    kv = torch.einsum("bihjd,bihje->bihde", phi_k, v)  # (B, I, H, D, D)
    linear = torch.einsum("bihjd,bihde->bihje", F.relu(q), kv)
    # Masked keys already carry v = 0, which zeroes the masked columns of ψ(bias) for every row.
    shared = torch.einsum("bhjk,bihkd->bihjd", bias_psi(bias, activation).to(q.dtype), v)
    return linear + shared


def _gated(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor) -> Tensor:
    key_mask = mask[:, :, None, :, None].to(q.dtype)
    scores = torch.einsum("bihjd,bihkd->bihjk", F.relu(q), F.relu(k) * key_mask)
    scores = scores * torch.sigmoid(bias)[:, None].to(q.dtype)
    return torch.einsum("bihjk,bihkd->bihjd", scores, v * key_mask)


def triangle_attention_torch(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    bias: Tensor,
    mask: Tensor,
    *,
    variant: Variant,
    bias_activation: BiasActivation = "relu",
) -> Tensor:
    """Triangle attention of one variant; see the module docstring for shapes and formulas."""
    _check(q, k, v, bias, mask)
    q = q * q.shape[-1] ** -0.5
    if variant == "vanilla":
        return _vanilla(q, k, v, bias, mask)
    if variant == "additive":
        return _additive(q, k, v, bias, mask, bias_activation)
    if variant == "gated":
        return _gated(q, k, v, bias, mask)
    raise ValueError(f"variant={variant!r}; expected 'vanilla', 'additive' or 'gated'")
