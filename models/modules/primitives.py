"""Primitives shared by every module: bias-free linear layers, SwiGLU transitions, adaptive LayerNorm,
row/column-shared dropout. Widths are in channels; ``...`` in shapes means any leading dims."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.init import INIT_KINDS, init_linear

_INIT_ALIASES = {"default": "lecun", "zeros": "final"}


def linear(
    c_in: int, c_out: int, *, bias: bool = False, init: str = "default", bias_init: float | None = None
) -> nn.Linear:
    """nn.Linear initialised as AF3 does (``models.init``): ``init`` is the layer's kind, "default" (LeCun
    normal), "zeros" (the final projection of a residual branch, so the block starts as the identity), "gating"
    (a sigmoid gate) or "adaptive_zero" (a conditioning layer AF3 starts at zero); ``bias_init`` fixes a bias
    (AF3 starts the diffusion blocks' output gates at -2).
    The kind is recorded on the layer so the model can re-apply its configured scheme."""
    layer = nn.Linear(c_in, c_out, bias=bias)
    layer.init_kind = _INIT_ALIASES.get(init, init)
    if layer.init_kind not in INIT_KINDS:
        raise ValueError(f"init={init!r}; expected default, zeros or one of {INIT_KINDS}")
    layer.bias_init = bias_init
    init_linear(layer)
    return layer


def row_chunks(n: int, chunk_size: int | None) -> list[slice]:
    """Slices of ``range(n)`` of ``chunk_size`` rows (one slice when ``chunk_size`` is None or ≥ n)."""
    step = n if chunk_size is None or chunk_size >= n else chunk_size
    return [slice(i, i + step) for i in range(0, max(n, 1), step)]


class Transition(nn.Module):
    """SwiGLU transition (AF3 Algorithm 11): x (..., c) -> (..., c) with hidden width n·c.

    ``chunk_size`` (set at inference by ``harness.predict.set_chunk_size``): rows of dim 1 at a time, so the
    (..., 2·n·c) hidden activations exist for one chunk only — for a pair z (B, N, N, c) at n = 4 they are
    8× z. Each row is computed independently, so the values are those of the unchunked call."""

    def __init__(self, c: int, n: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c)
        self.proj_in = linear(c, 2 * n * c)
        self.proj_out = linear(n * c, c, init="zeros")
        self.chunk_size: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        rows = row_chunks(x.shape[1], self.chunk_size) if x.dim() >= 3 else [slice(None)]
        if len(rows) == 1:
            return self._rows(x)
        out = x.new_empty(x.shape)
        for r in rows:
            out[:, r] = self._rows(x[:, r])
        return out

    def _rows(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        # Two products on the halves of proj_in's weight instead of chunking one output: SiLU and its backward
        # then run on contiguous tensors (on a strided half they were 2-4× slower on CPU) and the backward
        # needs no concatenation of the two output gradients.
        w_a, w_b = self.proj_in.weight.chunk(2, dim=0)
        a, b = nn.functional.linear(x, w_a), nn.functional.linear(x, w_b)
        return self.proj_out(nn.functional.silu(a) * b)


class AdaLN(nn.Module):
    """Adaptive LayerNorm (AF3 Algorithm 26): a (..., c_a) conditioned on s (..., c_cond) -> (..., c_a)."""

    def __init__(self, c_a: int, c_cond: int) -> None:
        super().__init__()
        self.norm_a = nn.LayerNorm(c_a, elementwise_affine=False)
        self.norm_s = nn.LayerNorm(c_cond, bias=False)
        self.scale = linear(c_cond, c_a, bias=True, init="adaptive_zero")
        self.shift = linear(c_cond, c_a, init="adaptive_zero")

    def forward(self, a: Tensor, s: Tensor) -> Tensor:
        s = self.norm_s(s)
        return torch.sigmoid(self.scale(s)) * self.norm_a(a) + self.shift(s)


class ConditionedTransition(nn.Module):
    """SwiGLU transition with adaptive LayerNorm and a conditioned output gate (AF3 Algorithm 25).

    a (..., c_a), s (..., c_cond) -> (..., c_a); hidden width n·c_a."""

    def __init__(self, c_a: int, c_cond: int, n: int) -> None:
        super().__init__()
        self.ada_ln = AdaLN(c_a, c_cond)
        self.proj_swish = linear(c_a, n * c_a)
        self.proj_linear = linear(c_a, n * c_a)
        self.gate = linear(c_cond, c_a, bias=True, init="adaptive_zero", bias_init=-2.0)
        self.proj_out = linear(n * c_a, c_a)

    def forward(self, a: Tensor, s: Tensor) -> Tensor:
        a = self.ada_ln(a, s)
        b = nn.functional.silu(self.proj_swish(a)) * self.proj_linear(a)
        return torch.sigmoid(self.gate(s)) * self.proj_out(b)


def residual_block(a: Tensor, attend, transit, order: str) -> Tensor:
    """One block of AF3's diffusion / atom transformer (Algorithm 23, 7) around the residual stream a (..., c):
    ``attend`` and ``transit`` map a tensor like ``a`` to its update.

    "sequential" is AF3's released code (``act += self_attention(act); act += transition_block(act)``, as in
    Protenix and Boltz): the transition sees the attention's output. "parallel" (a + Attn(a) + Trans(a), both
    from the block's input) is what the SI's pseudo-code can be read as; runs recorded before the order was
    configurable used it."""
    if order == "parallel":
        return a + attend(a) + transit(a)
    if order != "sequential":
        raise ValueError(f"block order {order!r}; expected 'sequential' or 'parallel'")
    a = a + attend(a)
    return a + transit(a)


def shared_dropout(x: Tensor, p: float, *, dim: int, training: bool) -> Tensor:
    """Dropout whose mask is shared along ``dim`` (AF3's row/column-wise pair dropout), scaled by 1/(1-p)."""
    if not training or p == 0.0:
        return x
    shape = list(x.shape)
    shape[dim] = 1
    keep = torch.bernoulli(torch.full(shape, 1.0 - p, device=x.device, dtype=x.dtype))
    return x * keep / (1.0 - p)
