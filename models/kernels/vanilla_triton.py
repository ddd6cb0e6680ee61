"""Flash-style softmax triangle attention in Triton: forward and backward with the pair-bias gradient.

Per (batch b, row i, head h) and query j: out[j] = Σ_k softmax_k(scale·q_j·k_k + bias[b, h, j, k]) v_k over
unmasked keys k. The (J × J) logits of a row exist only one (block_m × block_n) tile at a time, so memory is
O(n²) per head (outputs and a per-query log-sum-exp) instead of the O(n³) logits.

Backward, with P the softmax, dP = dO Vᵀ, Δ_j = Σ_d dO_jd O_jd and dS = P ⊙ (dP − Δ):
    dV = Pᵀ dO, dK = scale·dSᵀ Q, dQ = scale·dS K (two row-parallel kernels, no atomics), and
    dBias[b, h] = Σ_i dS_i, a reduction over rows: each program of ``_dbias_kernel`` holds one bias tile in
    fp32 registers over a split of rows and writes one partial; the partials are summed afterwards.
That is 9 (block × block × D) products per row and tile pair (dK/dV 4, dQ 3, dBias 2) against
FlashAttention-2's 5, which sums dQ with atomics. A fused dQ + dBias kernel (7 products: key tiles outer,
rows inner, the bias tile read once per split, dQ summed in an fp32 buffer) was written and spilled 12–656 B at
4 and at 8 warps on sm_80 and sm_90 (BENCHMARKS.md, "Kernels proven without a GPU"), so the three kernels stay.
No atomics anywhere, so gradients are deterministic.

Softmax runs in base 2 (exp2 with log2(e) folded into the logits); the stored log-sum-exp is in that base.
A row whose keys are all masked stores lse = +inf, which makes every P of that row 0: output and gradients 0.
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
from models.kernels.tile_io import head_ptr, key_valid, load_tile, program_row_tile, store_tile
from models.kernels.tuning import tuned

LOG2E = 1.4426950408889634


@triton.jit
def _logits_log2(q, k, bias_ptr, offs_m, offs_n, sb_q, sb_k, n_keys, valid_n, qk_scale,
                 PRECISION: tl.constexpr):
    """(block_m, block_n) logits in base 2, masked keys at -inf. q: (block_m, D), k: (block_n, D)."""
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
    bias = load_tile(bias_ptr, offs_m, offs_n, sb_q, sb_k, n_keys, n_keys, True)
    s += bias * 1.4426950408889634
    return tl.where(valid_n[None, :], s, float("-inf"))


@triton.jit
def _fwd_kernel(
    Q, K, V, BIAS, MASK, OUT, LSE,
    sq_b, sq_i, sq_h, sq_j, sq_d,
    sk_b, sk_i, sk_h, sk_j, sk_d,
    sv_b, sv_i, sv_h, sv_j, sv_d,
    so_b, so_i, so_h, so_j, so_d,
    sb_b, sb_h, sb_q, sb_k,
    sm_b, sm_i, sm_j,
    n_total, n_rows, n_heads, n_keys, n_dim, n_tiles, fold, qk_scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr, AS_FP32: tl.constexpr, PRECISION: tl.constexpr,
):
    b, i, h, row, tile, n_store = program_row_tile(n_total, n_rows, n_heads, n_keys, n_tiles, fold)
    offs_m = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    k_ptr = head_ptr(K, b, i, h, sk_b, sk_i, sk_h)
    v_ptr = head_ptr(V, b, i, h, sv_b, sv_i, sv_h)
    bias_ptr = BIAS + b * sb_b + h * sb_h
    mask_ptr = MASK + b * sm_b + i * sm_i

    q = load_tile(head_ptr(Q, b, i, h, sq_b, sq_i, sq_h), offs_m, offs_d, sq_j, sq_d, n_keys, n_dim, AS_FP32)
    m_run = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_run = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(0, n_keys, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        valid_n = key_valid(mask_ptr, offs_n, sm_j, n_keys, HAS_MASK)
        k = load_tile(k_ptr, offs_n, offs_d, sk_j, sk_d, n_keys, n_dim, AS_FP32)
        v = load_tile(v_ptr, offs_n, offs_d, sv_j, sv_d, n_keys, n_dim, AS_FP32)
        s = _logits_log2(q, k, bias_ptr, offs_m, offs_n, sb_q, sb_k, n_keys, valid_n, qk_scale, PRECISION)
        m_new = tl.maximum(m_run, tl.max(s, 1))
        # While every key seen so far is masked, m_new is -inf: shift by 0 instead to keep exp2 NaN-free.
        m_shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_run - m_shift)
        p = tl.exp2(s - m_shift[:, None])
        l_run = l_run * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_run = m_new

    empty = l_run == 0.0
    out = acc / tl.where(empty, 1.0, l_run)[:, None]
    store_tile(head_ptr(OUT, b, i, h, so_b, so_i, so_h), out, offs_m, offs_d, so_j, so_d, n_store, n_dim)
    lse = tl.where(empty, float("inf"), m_run + tl.log2(tl.where(empty, 1.0, l_run)))
    tl.store(LSE + row * n_keys + offs_m, lse, mask=offs_m < n_store)


@triton.jit
def _dkdv_kernel(
    Q, K, V, BIAS, MASK, DO, LSE, DELTA, DK, DV,
    sq_b, sq_i, sq_h, sq_j, sq_d,
    sk_b, sk_i, sk_h, sk_j, sk_d,
    sv_b, sv_i, sv_h, sv_j, sv_d,
    sd_b, sd_i, sd_h, sd_j, sd_d,
    sb_b, sb_h, sb_q, sb_k,
    sm_b, sm_i, sm_j,
    n_total, n_rows, n_heads, n_keys, n_dim, n_tiles, fold, qk_scale, scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr, AS_FP32: tl.constexpr, PRECISION: tl.constexpr,
):
    """One key tile of one row: dK and dV accumulated over all query tiles. DK, DV are laid out like K, V."""
    b, i, h, row, tile, n_store = program_row_tile(n_total, n_rows, n_heads, n_keys, n_tiles, fold)
    offs_n = tile * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q_ptr = head_ptr(Q, b, i, h, sq_b, sq_i, sq_h)
    do_ptr = head_ptr(DO, b, i, h, sd_b, sd_i, sd_h)
    bias_ptr = BIAS + b * sb_b + h * sb_h
    stat_ptr = row * n_keys

    valid_n = key_valid(MASK + b * sm_b + i * sm_i, offs_n, sm_j, n_keys, HAS_MASK)
    k_row = head_ptr(K, b, i, h, sk_b, sk_i, sk_h)
    v_row = head_ptr(V, b, i, h, sv_b, sv_i, sv_h)
    k = load_tile(k_row, offs_n, offs_d, sk_j, sk_d, n_keys, n_dim, AS_FP32)
    v = load_tile(v_row, offs_n, offs_d, sv_j, sv_d, n_keys, n_dim, AS_FP32)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    for start_m in range(0, n_keys, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        in_m = offs_m < n_keys
        q = load_tile(q_ptr, offs_m, offs_d, sq_j, sq_d, n_keys, n_dim, AS_FP32)
        do = load_tile(do_ptr, offs_m, offs_d, sd_j, sd_d, n_keys, n_dim, AS_FP32)
        lse = tl.load(LSE + stat_ptr + offs_m, mask=in_m, other=float("inf"))
        delta = tl.load(DELTA + stat_ptr + offs_m, mask=in_m, other=0.0)
        s = _logits_log2(q, k, bias_ptr, offs_m, offs_n, sb_q, sb_k, n_keys, valid_n, qk_scale, PRECISION)
        p = tl.exp2(s - lse[:, None])
        dv += tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q, input_precision=PRECISION)
    store_tile(head_ptr(DK, b, i, h, sk_b, sk_i, sk_h), dk * scale, offs_n, offs_d, sk_j, sk_d, n_store, n_dim)
    store_tile(head_ptr(DV, b, i, h, sv_b, sv_i, sv_h), dv, offs_n, offs_d, sv_j, sv_d, n_store, n_dim)


@triton.jit
def _dq_kernel(
    Q, K, V, BIAS, MASK, DO, LSE, DELTA, DQ,
    sq_b, sq_i, sq_h, sq_j, sq_d,
    sk_b, sk_i, sk_h, sk_j, sk_d,
    sv_b, sv_i, sv_h, sv_j, sv_d,
    sd_b, sd_i, sd_h, sd_j, sd_d,
    sb_b, sb_h, sb_q, sb_k,
    sm_b, sm_i, sm_j,
    n_total, n_rows, n_heads, n_keys, n_dim, n_tiles, fold, qk_scale, scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr, AS_FP32: tl.constexpr, PRECISION: tl.constexpr,
):
    """One query tile of one row: dQ accumulated over all key tiles. DQ is laid out like Q."""
    b, i, h, row, tile, n_store = program_row_tile(n_total, n_rows, n_heads, n_keys, n_tiles, fold)
    offs_m = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    in_m = offs_m < n_keys
    k_ptr = head_ptr(K, b, i, h, sk_b, sk_i, sk_h)
    v_ptr = head_ptr(V, b, i, h, sv_b, sv_i, sv_h)
    bias_ptr = BIAS + b * sb_b + h * sb_h
    mask_ptr = MASK + b * sm_b + i * sm_i
    stat_ptr = row * n_keys

    q = load_tile(head_ptr(Q, b, i, h, sq_b, sq_i, sq_h), offs_m, offs_d, sq_j, sq_d, n_keys, n_dim, AS_FP32)
    do = load_tile(head_ptr(DO, b, i, h, sd_b, sd_i, sd_h), offs_m, offs_d, sd_j, sd_d, n_keys, n_dim, AS_FP32)
    lse = tl.load(LSE + stat_ptr + offs_m, mask=in_m, other=float("inf"))
    delta = tl.load(DELTA + stat_ptr + offs_m, mask=in_m, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(0, n_keys, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        valid_n = key_valid(mask_ptr, offs_n, sm_j, n_keys, HAS_MASK)
        k = load_tile(k_ptr, offs_n, offs_d, sk_j, sk_d, n_keys, n_dim, AS_FP32)
        v = load_tile(v_ptr, offs_n, offs_d, sv_j, sv_d, n_keys, n_dim, AS_FP32)
        s = _logits_log2(q, k, bias_ptr, offs_m, offs_n, sb_q, sb_k, n_keys, valid_n, qk_scale, PRECISION)
        p = tl.exp2(s - lse[:, None])
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
    store_tile(head_ptr(DQ, b, i, h, sq_b, sq_i, sq_h), dq * scale, offs_m, offs_d, sq_j, sq_d, n_store, n_dim)


@triton.jit
def _dbias_kernel(
    Q, K, V, BIAS, MASK, DO, LSE, DELTA, DBIAS_PART,
    sq_b, sq_i, sq_h, sq_j, sq_d,
    sk_b, sk_i, sk_h, sk_j, sk_d,
    sv_b, sv_i, sv_h, sv_j, sv_d,
    sd_b, sd_i, sd_h, sd_j, sd_d,
    sb_b, sb_h, sb_q, sb_k,
    sm_b, sm_i, sm_j,
    n_batch, n_rows, n_heads, n_keys, n_dim, qk_scale, rows_per_program, part_stride,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr, AS_FP32: tl.constexpr, PRECISION: tl.constexpr,
):
    """One (query tile, key tile) of dBias[b, h] summed over a split of rows i: DBIAS_PART[split, b, h]."""
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    pid = tl.program_id(2).to(tl.int64)
    h = pid % n_heads
    b = (pid // n_heads) % n_batch
    split = pid // (n_heads * n_batch)
    in_m = offs_m < n_keys
    bias_ptr = BIAS + b * sb_b + h * sb_h

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
        stat_ptr = ((b * n_rows + i) * n_heads + h) * n_keys
        lse = tl.load(LSE + stat_ptr + offs_m, mask=in_m, other=float("inf"))
        delta = tl.load(DELTA + stat_ptr + offs_m, mask=in_m, other=0.0)
        s = _logits_log2(q, k, bias_ptr, offs_m, offs_n, sb_q, sb_k, n_keys, valid_n, qk_scale, PRECISION)
        p = tl.exp2(s - lse[:, None])
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        acc += p * (dp - delta[:, None])
    part_ptr = DBIAS_PART + ((split * n_batch + b) * n_heads + h) * n_keys * part_stride
    store_tile(part_ptr, acc, offs_m, offs_n, part_stride, 1, n_keys, n_keys)


def vanilla_forward(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None, scale: float
) -> tuple[Tensor, Tensor]:
    """Run the forward kernel.

    Args: q, k, v (B, I, H, J, D) any strides; bias (B, H, J, J); mask (B, I, J) bool or None; scale on q·k.
    Returns: out (B, I, H, J, D) laid out like q; lse (B, I, H, J) fp32, base-2 log-sum-exp of the logits.
    """
    q, k, v = kernel_input(q), kernel_input(k), kernel_input(v)
    bias = aligned_rows(bias)  # read along keys at unit stride (a permuted one costs strided O(n³) reads)
    b, i, h, j, d = q.shape
    out = torch.empty_like(q)
    lse = torch.empty((b, i, h, j), device=q.device, dtype=torch.float32)

    def run(tiles: Tiles) -> None:
        launch_rows(_fwd_kernel, tiles, tiles.block_m, q, mask, (q, k, v, bias), (out, lse),
                    strides(q, k, v, out, bias), (scale * LOG2E,))  # fmt: skip

    tuned("vanilla.fwd", q.device, tuning_key(q, mask), candidates(d, q.dtype), run)
    return out, lse


def vanilla_backward(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | None,
    out: Tensor, lse: Tensor, scale: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients (dq, dk, dv laid out like q, k, v; dbias (B, H, J, J) contiguous, in bias's dtype)."""
    q, k, v, grad_out = kernel_input(q), kernel_input(k), kernel_input(v), kernel_input(grad_out)
    bias = aligned_rows(bias)
    b, i, h, j, d = q.shape
    delta = (grad_out.float() * out.float()).sum(-1)  # (B, I, H, J) fp32
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    all_strides = strides(q, k, v, grad_out, bias)
    key = tuning_key(q, mask)

    def run_dkdv(tiles: Tiles) -> None:
        launch_rows(_dkdv_kernel, tiles, tiles.block_n, q, mask, (q, k, v, bias), (grad_out, lse, delta, dk, dv),
                    all_strides, (scale * LOG2E, scale))  # fmt: skip

    def run_dq(tiles: Tiles) -> None:
        launch_rows(_dq_kernel, tiles, tiles.block_m, q, mask, (q, k, v, bias), (grad_out, lse, delta, dq),
                    all_strides, (scale * LOG2E, scale))  # fmt: skip

    def run_dbias(tiles: Tiles) -> Tensor:
        return launch_bias_grad(_dbias_kernel, tiles, q, mask, (q, k, v, bias), (grad_out, lse, delta), all_strides,
                                (scale * LOG2E,))  # fmt: skip

    configs = candidates(d, q.dtype)
    tuned("vanilla.dkdv", q.device, key, configs, run_dkdv)
    tuned("vanilla.dq", q.device, key, configs, run_dq)
    part = tuned("vanilla.dbias", q.device, key, configs, run_dbias)
    return dq, dk, dv, sum_partials(part, bias.dtype)
