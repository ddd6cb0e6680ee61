"""Tiled gated linear triangle attention in Triton: forward and backward.

Per (batch b, row i, head h): out = (scale·φ(Q) φ(K)ᵀ ⊙ G ⊙ M) V with φ = ReLU, G = σ(bias[b, h]) (J × J,
computed once outside the kernel, shared by all rows) and M the key mask of row i. The (J × J) weights of a
row exist one tile at a time (O(n²) memory per head); no softmax, so no running max and no log-sum-exp.

Backward, with A = φ(Q) φ(K)ᵀ, W = scale·A ⊙ G ⊙ M, dW = dO Vᵀ and dA = scale·dW ⊙ G ⊙ M:
    dV = Wᵀ dO, dQ = (dA φ(K)) ⊙ [Q > 0], dK = (dAᵀ φ(Q)) ⊙ [K > 0] (row-parallel kernels, no atomics), and
    dG[b, h] = scale·Σ_i dW_i ⊙ A_i ⊙ M_i, reduced over rows like the softmax kernel's bias gradient (8 products
    per row and tile pair; the fused dQ + dG kernel spilled, as the softmax one did); the caller chains dG
    through σ.
φ keeps the inputs' dtype (bf16 dots stay bf16 on the tensor cores) and a NaN (``tile_io.relu``), so a NaN in
q or in an unmasked key reaches the output as in the PyTorch path; a masked key is never read into a product.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from models.kernels.launch import (
    launch_bias_grad,
    launch_rows,
    strides,
    sum_partials,
    tuning_key,
)
from models.kernels.launch_config import Tiles, aligned_rows, candidates, kernel_input
from models.kernels.tile_io import head_ptr, key_valid, load_tile, program_row_tile, relu, store_tile
from models.kernels.tuning import tuned


@triton.jit
def _fwd_kernel(
    Q, K, V, GATE, MASK, OUT,
    sq_b, sq_i, sq_h, sq_j, sq_d,
    sk_b, sk_i, sk_h, sk_j, sk_d,
    sv_b, sv_i, sv_h, sv_j, sv_d,
    so_b, so_i, so_h, so_j, so_d,
    sg_b, sg_h, sg_q, sg_k,
    sm_b, sm_i, sm_j,
    n_total, n_rows, n_heads, n_keys, n_dim, n_tiles, fold, scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr, AS_FP32: tl.constexpr, PRECISION: tl.constexpr,
):
    b, i, h, row, tile, n_store = program_row_tile(n_total, n_rows, n_heads, n_keys, n_tiles, fold)
    offs_m = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    k_ptr = head_ptr(K, b, i, h, sk_b, sk_i, sk_h)
    v_ptr = head_ptr(V, b, i, h, sv_b, sv_i, sv_h)
    gate_ptr = GATE + b * sg_b + h * sg_h
    mask_ptr = MASK + b * sm_b + i * sm_i

    q = load_tile(head_ptr(Q, b, i, h, sq_b, sq_i, sq_h), offs_m, offs_d, sq_j, sq_d, n_keys, n_dim, AS_FP32)
    q = relu(q)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(0, n_keys, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        valid_n = key_valid(mask_ptr, offs_n, sm_j, n_keys, HAS_MASK)
        k = relu(load_tile(k_ptr, offs_n, offs_d, sk_j, sk_d, n_keys, n_dim, AS_FP32))
        v = load_tile(v_ptr, offs_n, offs_d, sv_j, sv_d, n_keys, n_dim, AS_FP32)
        gate = load_tile(gate_ptr, offs_m, offs_n, sg_q, sg_k, n_keys, n_keys, True)
        w = tl.dot(q, tl.trans(k), input_precision=PRECISION) * gate
        w = tl.where(valid_n[None, :], w, 0.0)
        acc += tl.dot(w.to(v.dtype), v, input_precision=PRECISION)
    store_tile(head_ptr(OUT, b, i, h, so_b, so_i, so_h), acc * scale, offs_m, offs_d, so_j, so_d, n_store, n_dim)


@triton.jit
def _dkdv_kernel(
    Q, K, V, GATE, MASK, DO, DK, DV,
    sq_b, sq_i, sq_h, sq_j, sq_d,
    sk_b, sk_i, sk_h, sk_j, sk_d,
    sv_b, sv_i, sv_h, sv_j, sv_d,
    sd_b, sd_i, sd_h, sd_j, sd_d,
    sg_b, sg_h, sg_q, sg_k,
    sm_b, sm_i, sm_j,
    n_total, n_rows, n_heads, n_keys, n_dim, n_tiles, fold, scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr, AS_FP32: tl.constexpr, PRECISION: tl.constexpr,
):
    """One key tile of one row: dK and dV accumulated over all query tiles. DK, DV are laid out like K, V."""
    b, i, h, row, tile, n_store = program_row_tile(n_total, n_rows, n_heads, n_keys, n_tiles, fold)
    offs_n = tile * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q_ptr = head_ptr(Q, b, i, h, sq_b, sq_i, sq_h)
    do_ptr = head_ptr(DO, b, i, h, sd_b, sd_i, sd_h)
    gate_ptr = GATE + b * sg_b + h * sg_h

    valid_n = key_valid(MASK + b * sm_b + i * sm_i, offs_n, sm_j, n_keys, HAS_MASK)
    k = load_tile(head_ptr(K, b, i, h, sk_b, sk_i, sk_h), offs_n, offs_d, sk_j, sk_d, n_keys, n_dim, AS_FP32)
    k_pos = k > 0
    k = relu(k)
    v = load_tile(head_ptr(V, b, i, h, sv_b, sv_i, sv_h), offs_n, offs_d, sv_j, sv_d, n_keys, n_dim, AS_FP32)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    for start_m in range(0, n_keys, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q = relu(load_tile(q_ptr, offs_m, offs_d, sq_j, sq_d, n_keys, n_dim, AS_FP32))
        do = load_tile(do_ptr, offs_m, offs_d, sd_j, sd_d, n_keys, n_dim, AS_FP32)
        gate = load_tile(gate_ptr, offs_m, offs_n, sg_q, sg_k, n_keys, n_keys, True)
        gate = tl.where(valid_n[None, :], gate * scale, 0.0)
        w = tl.dot(q, tl.trans(k), input_precision=PRECISION) * gate
        dv += tl.dot(tl.trans(w.to(do.dtype)), do, input_precision=PRECISION)
        da = tl.dot(do, tl.trans(v), input_precision=PRECISION) * gate
        dk += tl.dot(tl.trans(da.to(q.dtype)), q, input_precision=PRECISION)
    dk = tl.where(k_pos, dk, 0.0)
    store_tile(head_ptr(DK, b, i, h, sk_b, sk_i, sk_h), dk, offs_n, offs_d, sk_j, sk_d, n_store, n_dim)
    store_tile(head_ptr(DV, b, i, h, sv_b, sv_i, sv_h), dv, offs_n, offs_d, sv_j, sv_d, n_store, n_dim)


@triton.jit
def _dq_kernel(
    Q, K, V, GATE, MASK, DO, DQ,
    sq_b, sq_i, sq_h, sq_j, sq_d,
    sk_b, sk_i, sk_h, sk_j, sk_d,
    sv_b, sv_i, sv_h, sv_j, sv_d,
    sd_b, sd_i, sd_h, sd_j, sd_d,
    sg_b, sg_h, sg_q, sg_k,
    sm_b, sm_i, sm_j,
    n_total, n_rows, n_heads, n_keys, n_dim, n_tiles, fold, scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr, AS_FP32: tl.constexpr, PRECISION: tl.constexpr,
):
    """One query tile of one row: dQ accumulated over all key tiles. DQ is laid out like Q."""
    b, i, h, row, tile, n_store = program_row_tile(n_total, n_rows, n_heads, n_keys, n_tiles, fold)
    offs_m = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    k_ptr = head_ptr(K, b, i, h, sk_b, sk_i, sk_h)
    v_ptr = head_ptr(V, b, i, h, sv_b, sv_i, sv_h)
    gate_ptr = GATE + b * sg_b + h * sg_h
    mask_ptr = MASK + b * sm_b + i * sm_i

    q_pos = load_tile(head_ptr(Q, b, i, h, sq_b, sq_i, sq_h), offs_m, offs_d, sq_j, sq_d, n_keys, n_dim,
                      AS_FP32) > 0
    do = load_tile(head_ptr(DO, b, i, h, sd_b, sd_i, sd_h), offs_m, offs_d, sd_j, sd_d, n_keys, n_dim, AS_FP32)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(0, n_keys, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        valid_n = key_valid(mask_ptr, offs_n, sm_j, n_keys, HAS_MASK)
        k = relu(load_tile(k_ptr, offs_n, offs_d, sk_j, sk_d, n_keys, n_dim, AS_FP32))
        v = load_tile(v_ptr, offs_n, offs_d, sv_j, sv_d, n_keys, n_dim, AS_FP32)
        gate = load_tile(gate_ptr, offs_m, offs_n, sg_q, sg_k, n_keys, n_keys, True)
        da = tl.dot(do, tl.trans(v), input_precision=PRECISION) * gate
        da = tl.where(valid_n[None, :], da, 0.0)
        dq += tl.dot(da.to(k.dtype), k, input_precision=PRECISION)
    dq = tl.where(q_pos, dq * scale, 0.0)
    store_tile(head_ptr(DQ, b, i, h, sq_b, sq_i, sq_h), dq, offs_m, offs_d, sq_j, sq_d, n_store, n_dim)


@triton.jit
def _dgate_kernel(
    Q, K, V, MASK, DO, DGATE_PART,
    sq_b, sq_i, sq_h, sq_j, sq_d,
    sk_b, sk_i, sk_h, sk_j, sk_d,
    sv_b, sv_i, sv_h, sv_j, sv_d,
    sd_b, sd_i, sd_h, sd_j, sd_d,
    sm_b, sm_i, sm_j,
    n_batch, n_rows, n_heads, n_keys, n_dim, scale, rows_per_program, part_stride,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr, AS_FP32: tl.constexpr, PRECISION: tl.constexpr,
):
    """One (query tile, key tile) of dG[b, h] summed over a split of rows i into DGATE_PART[split, b, h]."""
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    pid = tl.program_id(2).to(tl.int64)
    h = pid % n_heads
    b = (pid // n_heads) % n_batch
    split = pid // (n_heads * n_batch)

    acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    row_start = split * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    for i in range(row_start, row_end):
        valid_n = key_valid(MASK + b * sm_b + i * sm_i, offs_n, sm_j, n_keys, HAS_MASK)
        q = load_tile(Q + b * sq_b + i * sq_i + h * sq_h, offs_m, offs_d, sq_j, sq_d, n_keys, n_dim, AS_FP32)
        do = load_tile(DO + b * sd_b + i * sd_i + h * sd_h, offs_m, offs_d, sd_j, sd_d, n_keys, n_dim,
                       AS_FP32)
        k = load_tile(K + b * sk_b + i * sk_i + h * sk_h, offs_n, offs_d, sk_j, sk_d, n_keys, n_dim, AS_FP32)
        v = load_tile(V + b * sv_b + i * sv_i + h * sv_h, offs_n, offs_d, sv_j, sv_d, n_keys, n_dim, AS_FP32)
        a = tl.dot(relu(q), tl.trans(relu(k)), input_precision=PRECISION)
        dw = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        acc += tl.where(valid_n[None, :], a * dw, 0.0)
    part_ptr = DGATE_PART + ((split * n_batch + b) * n_heads + h) * n_keys * part_stride
    store_tile(part_ptr, acc * scale, offs_m, offs_n, part_stride, 1, n_keys, n_keys)


def gated_forward(q: Tensor, k: Tensor, v: Tensor, gate: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    """Run the forward kernel.

    Args: q, k, v (B, I, H, J, D) any strides; gate = σ(bias) (B, H, J, J); mask (B, I, J) bool or None.
    Returns: out (B, I, H, J, D) laid out like q.
    """
    q, k, v = kernel_input(q), kernel_input(k), kernel_input(v)
    gate = aligned_rows(gate)  # read along keys at unit stride (a permuted one costs strided O(n³) reads)
    b, i, h, j, d = q.shape
    out = torch.empty_like(q)

    def run(tiles: Tiles) -> None:
        launch_rows(_fwd_kernel, tiles, tiles.block_m, q, mask, (q, k, v, gate), (out,),
                    strides(q, k, v, out, gate), (scale,))  # fmt: skip

    tuned("gated.fwd", q.device, tuning_key(q, mask), candidates(d, q.dtype), run)
    return out


def gated_backward(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, gate: Tensor, mask: Tensor | None, scale: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients (dq, dk, dv laid out like q, k, v; dgate (B, H, J, J) contiguous, in gate's dtype)."""
    q, k, v, grad_out = kernel_input(q), kernel_input(k), kernel_input(v), kernel_input(grad_out)
    gate = aligned_rows(gate)
    b, i, h, j, d = q.shape
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    qkvdo_gate = strides(q, k, v, grad_out, gate)
    key = tuning_key(q, mask)

    def run_dkdv(tiles: Tiles) -> None:
        launch_rows(_dkdv_kernel, tiles, tiles.block_n, q, mask, (q, k, v, gate), (grad_out, dk, dv), qkvdo_gate,
                    (scale,))  # fmt: skip

    def run_dq(tiles: Tiles) -> None:
        launch_rows(_dq_kernel, tiles, tiles.block_m, q, mask, (q, k, v, gate), (grad_out, dq), qkvdo_gate,
                    (scale,))  # fmt: skip

    def run_dgate(tiles: Tiles) -> Tensor:  # dG does not read the gate: q, k, v, dO strides only
        return launch_bias_grad(_dgate_kernel, tiles, q, mask, (q, k, v), (grad_out,), qkvdo_gate[:20], (scale,))

    configs = candidates(d, q.dtype)
    tuned("gated.dkdv", q.device, key, configs, run_dkdv)
    tuned("gated.dq", q.device, key, configs, run_dq)
    part = tuned("gated.dgate", q.device, key, configs, run_dgate)
    return dq, dk, dv, sum_partials(part, gate.dtype)
