"""Host-side launch code shared by the triangle-attention kernels: strides, mask argument, constexprs and the
row-parallel grid.

Row-parallel kernels run one program per (tile of J, batch·row·head). CUDA caps grid axes 1 and 2 at 65,535
programs while axis 0 takes 2³¹ − 1; B·I·H passes 65,535 at n ≈ 4,096 with 16 heads, so the rows are folded
into axis 0: ``fold`` rows share one axis-1 index (``program_row_tile`` in ``tile_io`` undoes it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import triton
from torch import Tensor

from models.kernels.launch_config import INTERPRETING, choose_tiles, dot_precision

MAX_GRID_Y = 65_535  # CUDA's limit on grid axes 1 and 2
_grid_limit = MAX_GRID_Y


@contextlib.contextmanager
def grid_limit(limit: int) -> Iterator[None]:
    """Pretend the grid's axis-1 limit is ``limit`` inside the block: tests fold rows at small sizes."""
    global _grid_limit
    previous, _grid_limit = _grid_limit, limit
    try:
        yield
    finally:
        _grid_limit = previous


@dataclass(frozen=True)
class RowGrid:
    """Grid of a row-parallel kernel: ``n_tiles`` tiles per row, ``fold`` rows per axis-1 index."""

    n_tiles: int
    n_rows: int
    fold: int

    @property
    def grid(self) -> tuple[int, int]:
        return self.n_tiles * self.fold, triton.cdiv(self.n_rows, self.fold)

    @property
    def args(self) -> tuple[int, int]:
        """The kernel arguments ``program_row_tile`` needs: (n_tiles, fold)."""
        return self.n_tiles, self.fold


def row_grid(n_keys: int, block: int, n_rows: int) -> RowGrid:
    """The grid for ``n_rows`` = B·I·H rows of ``n_keys`` positions in tiles of ``block``."""
    fold = triton.cdiv(n_rows, _grid_limit)
    return RowGrid(triton.cdiv(n_keys, block), n_rows, fold)


def strides(*tensors: Tensor) -> tuple[int, ...]:
    """Every stride of every tensor, in order: the kernels address each tensor through its own strides."""
    return tuple(s for t in tensors for s in t.stride())


def launch_meta(q: Tensor, mask: Tensor | None) -> tuple[Tensor, tuple[int, ...], dict]:
    """Mask pointer (a uint8 view, or q as an unused stand-in), its three strides, and the constexprs every
    kernel takes (tiles, padded head dim, mask flag, fp32 loads, dot precision, warps, stages)."""
    j, d = q.shape[-2:]
    tiles = choose_tiles(j, d)
    if mask is None:
        mask_arg, mask_strides = q, (0, 0, 0)
    else:
        mask_arg, mask_strides = mask.view(torch.uint8), tuple(mask.stride())
    meta = dict(
        BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_D=max(16, triton.next_power_of_2(d)),
        HAS_MASK=mask is not None, AS_FP32=INTERPRETING or q.dtype == torch.float32,
        PRECISION=dot_precision(q.dtype), num_warps=tiles.num_warps, num_stages=tiles.num_stages,
    )  # fmt: skip
    return mask_arg, mask_strides, meta
