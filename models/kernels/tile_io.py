"""Triton helpers shared by the triangle-attention kernels: locating a row and loading strided tiles.

Every tensor is addressed through its own strides, so a transposed pair tensor (ending-node attention) or a
head-split view is read in place without a copy. A (J, D) plane's or a (J, J) bias's base is found with int64
scalars (at n = 2048 the flat index of a (B, I, H, J, D) tensor passes 2**31), but offsets inside a tile are
int32: a (block × block) tile of int64 offsets costs twice the registers and made the kernels spill
(BENCHMARKS.md, "Kernels proven without a GPU"). The host keeps every plane's extent below 2**31
(``launch_config.in_tile_safe``), so int32 cannot wrap.
"""

import triton
import triton.language as tl


@triton.jit
def row_coords(pid, n_rows, n_heads):
    """Split a flat int64 program id over (batch, row i, head), head fastest, into int64 (b, i, h)."""
    h = pid % n_heads
    i = (pid // n_heads) % n_rows
    b = pid // (n_heads * n_rows)
    return b, i, h


@triton.jit
def load_tile(ptr, rows, cols, stride_r, stride_c, n_r, n_c, AS_FP32: tl.constexpr):
    """Load ptr[rows, cols] (zeros outside n_r × n_c); cast to fp32 when AS_FP32 (interpreter bf16 dots).
    ``rows``, ``cols`` are int32 and so are the offsets (see the module docstring)."""
    offsets = rows[:, None] * stride_r + cols[None, :] * stride_c
    valid = (rows[:, None] < n_r) & (cols[None, :] < n_c)
    tile = tl.load(ptr + offsets, mask=valid, other=0.0)
    if AS_FP32:
        tile = tile.to(tl.float32)
    return tile


@triton.jit
def store_tile(ptr, value, rows, cols, stride_r, stride_c, n_r, n_c):
    """Store value into ptr[rows, cols] inside n_r × n_c, cast to the pointer's dtype (int32 offsets)."""
    offsets = rows[:, None] * stride_r + cols[None, :] * stride_c
    valid = (rows[:, None] < n_r) & (cols[None, :] < n_c)
    tl.store(ptr + offsets, value.to(ptr.dtype.element_ty), mask=valid)


@triton.jit
def relu(x):
    """max(x, 0) in x's own dtype, NaN kept, as ``torch.relu``. ``tl.maximum(x, 0.0)`` would promote bf16 to
    fp32 (the Python float), turning the next ``tl.dot`` into a TF32 one, and returns 0 for NaN (maxnum)."""
    return tl.where(x < 0, tl.zeros_like(x), x)


@triton.jit
def key_valid(mask_ptr, cols, stride_j, n_keys, HAS_MASK: tl.constexpr):
    """(block_n,) bool: column inside the row and, with a mask, not a padded key."""
    valid = cols < n_keys
    if HAS_MASK:
        keep = tl.load(mask_ptr + cols * stride_j, mask=valid, other=0)
        valid = valid & (keep != 0)
    return valid


@triton.jit
def program_row_tile(n_total, n_rows, n_heads, n_keys, n_tiles, fold):
    """(b, i, h, row, tile, n_store) of this program of a folded row-parallel grid (``launch.RowGrid``).

    Axis 0 holds ``fold`` rows × ``n_tiles`` tiles, axis 1 the groups of ``fold`` rows; row = (b·I + i)·H + h
    of n_total = B·I·H. The last group may run past n_total: those programs recompute the last row and get
    n_store = 0, so bounding their stores by n_store writes nothing (one code path, no early return).
    b, i, h and row are int64 (they scale strides); tile is int32 (it makes the int32 in-tile offsets).
    """
    pid0 = tl.program_id(0)
    tile = pid0 % n_tiles
    row = tl.program_id(1).to(tl.int64) * fold + pid0 // n_tiles
    n_store = tl.where(row < n_total, n_keys, 0)
    row = tl.minimum(row, n_total - 1)
    b, i, h = row_coords(row, n_rows, n_heads)
    return b, i, h, row, tile, n_store


@triton.jit
def head_ptr(ptr, b, i, h, s_b, s_i, s_h):
    """Pointer to the (J, D) plane of row i, head h in batch b of a (B, I, H, J, D) tensor."""
    return ptr + b * s_b + i * s_i + h * s_h
