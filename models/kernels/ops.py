"""The Triton kernels as ``torch.library`` custom ops: autograd, fake tensors and FLOP counts.

A custom op with ``register_fake`` and ``register_autograd`` is what compiles under ``torch.compile``
(fullgraph) and passes ``torch.library.opcheck`` (SPEC.md §5); the backward is itself a custom op so the
compiled graph stays traceable. Kernel modules are imported inside the op bodies, so importing this module
needs only torch (Triton is imported when an op first runs).

FLOP formulas count the matrix products of the mathematical operation (2·J²·D per row, head and product:
forward QKᵀ and PV; backward dV, dP, dQ, dK), i.e. what ``FlopCounterMode`` counts for the PyTorch reference,
not the kernels' recomputation.
"""

import torch
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from models.kernels.launch_config import kernel_input


def _input_grads(q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Empty gradients laid out as the kernels return them (the fake ops' outputs): dq, dk, dv like the inputs
    the kernels read (``kernel_input``), the bias (or gate) gradient contiguous whatever the bias's strides."""
    return (torch.empty_like(kernel_input(q)), torch.empty_like(kernel_input(k)), torch.empty_like(kernel_input(v)),
            bias.new_empty(bias.shape))  # fmt: skip


@torch.library.custom_op("seedfold::tri_att_vanilla", mutates_args=())
def _vanilla_fwd(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None, scale: float
) -> tuple[Tensor, Tensor]:
    from models.kernels.vanilla_triton import vanilla_forward

    return vanilla_forward(q, k, v, bias, mask, scale)


@_vanilla_fwd.register_fake
def _(q, k, v, bias, mask, scale):
    return torch.empty_like(kernel_input(q)), q.new_empty(q.shape[:-1], dtype=torch.float32)


@torch.library.custom_op("seedfold::tri_att_vanilla_bwd", mutates_args=())
def _vanilla_bwd(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None,
    out: Tensor, lse: Tensor, scale: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from models.kernels.vanilla_triton import vanilla_backward

    return vanilla_backward(grad_out, q, k, v, bias, mask, out, lse, scale)


@_vanilla_bwd.register_fake
def _(grad_out, q, k, v, bias, mask, out, lse, scale):
    return _input_grads(q, k, v, bias)


def _vanilla_setup(ctx, inputs, output):
    q, k, v, bias, mask, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, bias, mask, out, lse)
    ctx.scale = scale
    ctx.mark_non_differentiable(lse)


def _vanilla_grad(ctx, grad_out, _grad_lse):
    q, k, v, bias, mask, out, lse = ctx.saved_tensors
    dq, dk, dv, dbias = _vanilla_bwd(grad_out, q, k, v, bias, mask, out, lse, ctx.scale)
    return dq, dk, dv, dbias, None, None


_vanilla_fwd.register_autograd(_vanilla_grad, setup_context=_vanilla_setup)


@torch.library.custom_op("seedfold::tri_att_gated", mutates_args=())
def _gated_fwd(q: Tensor, k: Tensor, v: Tensor, gate: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    from models.kernels.gated_triton import gated_forward

    return gated_forward(q, k, v, gate, mask, scale)


@_gated_fwd.register_fake
def _(q, k, v, gate, mask, scale):
    return torch.empty_like(kernel_input(q))


@torch.library.custom_op("seedfold::tri_att_gated_bwd", mutates_args=())
def _gated_bwd(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, gate: Tensor, mask: Tensor | None, scale: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from models.kernels.gated_triton import gated_backward

    return gated_backward(grad_out, q, k, v, gate, mask, scale)


@_gated_bwd.register_fake
def _(grad_out, q, k, v, gate, mask, scale):
    return _input_grads(q, k, v, gate)


def _gated_setup(ctx, inputs, output):
    q, k, v, gate, mask, scale = inputs
    ctx.save_for_backward(q, k, v, gate, mask)
    ctx.scale = scale


def _gated_grad(ctx, grad_out):
    q, k, v, gate, mask = ctx.saved_tensors
    dq, dk, dv, dgate = _gated_bwd(grad_out, q, k, v, gate, mask, ctx.scale)
    return dq, dk, dv, dgate, None, None


_gated_fwd.register_autograd(_gated_grad, setup_context=_gated_setup)


def _pair_products(q_shape) -> int:
    """2·B·I·H·J²·D: the FLOPs of one (J × J)·(J × D) product per row and head."""
    b, i, h, j, d = q_shape
    return 2 * b * i * h * j * j * d


@register_flop_formula([torch.ops.seedfold.tri_att_vanilla, torch.ops.seedfold.tri_att_gated])
def _forward_flops(q_shape, *args, **kwargs) -> int:
    return 2 * _pair_products(q_shape)


@register_flop_formula([torch.ops.seedfold.tri_att_vanilla_bwd, torch.ops.seedfold.tri_att_gated_bwd])
def _backward_flops(grad_out_shape, *args, **kwargs) -> int:
    return 4 * _pair_products(grad_out_shape)


def vanilla_attention(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None, scale: float
) -> Tensor:
    """softmax(scale·q kᵀ + bias, masked keys -inf) v through the Triton kernels; (B, I, H, J, D)."""
    return torch.ops.seedfold.tri_att_vanilla(q, k, v, bias, mask, scale)[0]


def gated_attention(
    q: Tensor, k: Tensor, v: Tensor, gate: Tensor, mask: Tensor | None, scale: float
) -> Tensor:
    """(scale·relu(q) relu(k)ᵀ ⊙ gate, masked keys 0) v through the Triton kernels; (B, I, H, J, D)."""
    return torch.ops.seedfold.tri_att_gated(q, k, v, gate, mask, scale)
