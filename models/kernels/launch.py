"""Host-side launch code shared by the triangle-attention kernels: the one launch function (device guard,
capture), strides, mask argument, constexprs and the row-parallel grid.

Every kernel starts through ``launch``: Triton launches on the *current* CUDA device, so a model moved to
``cuda:1`` without ``torch.cuda.set_device`` would run its kernels on device 0 with pointers into device 1 (an
illegal memory access no Python code can catch); ``launch`` makes the tensors' device current first.
``capture_launches`` records the launches instead of running them, so the compile check
(``benchmarks/kernel_compile.py``) compiles exactly what the host code would launch.

Row-parallel kernels run one program per (tile of J, batch·row·head). CUDA caps grid axes 1 and 2 at 65,535
programs while axis 0 takes 2³¹ − 1; B·I·H passes 65,535 at n ≈ 4,096 with 16 heads, so the rows are folded
into axis 0: ``fold`` rows share one axis-1 index (``program_row_tile`` in ``tile_io`` undoes it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from models.kernels.errors import KernelUnavailableError
from models.kernels.launch_config import (
    INTERPRETING,
    Tiles,
    dot_precision,
    padded_length,
    rows_per_split,
    triton_version_problem,
)

if (_problem := triton_version_problem()) is not None:  # before Triton is imported: one clear message
    raise KernelUnavailableError(_problem)

import triton  # noqa: E402

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
class Launch:
    """One kernel launch as the host code issues it: the kernel, its grid, arguments and launch options."""

    kernel: Any
    grid: tuple[int, ...]
    args: tuple
    meta: dict
    device: torch.device


_captured: list[Launch] | None = None


@contextlib.contextmanager
def capture_launches() -> Iterator[list[Launch]]:
    """Inside the block ``launch`` records each launch in the yielded list and runs nothing (outputs stay
    uninitialised): what the compile check compiles, and what tests inspect."""
    global _captured
    previous, _captured = _captured, []
    try:
        yield _captured
    finally:
        _captured = previous


def capturing() -> bool:
    """Whether launches are being recorded instead of run (``capture_launches``)."""
    return _captured is not None


def device_guard(device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.cuda.device(device)`` for a CUDA device (its index made current for the block), else nothing."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def launch(kernel: Any, grid: tuple[int, ...] | Callable[[dict], tuple[int, ...]], *args: Any, **meta: Any) -> None:
    """``kernel[grid](*args, **meta)`` on the device of its tensor arguments (all on one device)."""
    devices = {a.device for a in args if isinstance(a, Tensor)}
    if len(devices) != 1:
        raise ValueError(f"a kernel launch needs its tensors on one device; got {sorted(map(str, devices))}")
    (device,) = devices
    if _captured is not None:
        _captured.append(Launch(kernel, grid, args, meta, device))
        return
    with device_guard(device):
        kernel[grid](*args, **meta)


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


def launch_meta(q: Tensor, mask: Tensor | None, tiles: Tiles) -> tuple[Tensor, tuple[int, ...], dict]:
    """Mask pointer (a uint8 view, or q as an unused stand-in), its three strides, and the constexprs every
    kernel takes (tiles, padded head dim, mask flag, fp32 loads, dot precision, warps, stages)."""
    if mask is None:
        mask_arg, mask_strides = q, (0, 0, 0)
    else:
        mask_arg, mask_strides = mask.view(torch.uint8), tuple(mask.stride())
    meta = dict(
        BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_D=max(16, triton.next_power_of_2(q.shape[-1])),
        HAS_MASK=mask is not None, AS_FP32=INTERPRETING or q.dtype == torch.float32,
        PRECISION=dot_precision(q.dtype), num_warps=tiles.num_warps, num_stages=tiles.num_stages,
    )  # fmt: skip
    return mask_arg, mask_strides, meta


def tuning_key(q: Tensor, mask: Tensor | None) -> tuple:
    """What a tuned choice depends on: dtype, head dim, mask, dot precision, row length and the row count
    (rounded up to a power of two, so chunked inference does not retune every chunk)."""
    b, i, h, j, d = q.shape
    return (q.dtype, d, mask is not None, dot_precision(q.dtype), j, triton.next_power_of_2(b * i * h))


def bias_grad_partials(q: Tensor, tiles: Tiles) -> tuple[tuple[int, int, int], int, Tensor]:
    """Grid, rows per program and fp32 partial buffer (splits, B, H, J, J padded to 16) of a bias-gradient
    kernel (``_dbias_kernel``, ``_dgate_kernel``) for q (B, I, H, J, D) in ``tiles``."""
    b, i, h, j, _ = q.shape
    n_m, n_n = triton.cdiv(j, tiles.block_m), triton.cdiv(j, tiles.block_n)
    per_program = rows_per_split(i, n_m * n_n, b * h)
    splits = triton.cdiv(i, per_program)
    part = torch.empty((splits, b, h, j, padded_length(j)), device=q.device, dtype=torch.float32)
    return (n_m, n_n, splits * b * h), per_program, part


def sum_partials(part: Tensor, dtype: torch.dtype) -> Tensor:
    """The bias gradient (B, H, J, J) from its partials: summed over splits, unpadded, contiguous (as the fake
    ops say), in ``dtype``."""
    return part.sum(0)[..., : part.shape[-2]].to(dtype).contiguous()


def launch_rows(
    kernel: Any, tiles: Tiles, block: int, q: Tensor, mask: Tensor | None,
    inputs: tuple[Tensor, ...], outputs: tuple[Tensor, ...], tensor_strides: tuple[int, ...], scalars: tuple,
) -> None:
    """Launch a row-parallel kernel (one program per tile of ``block`` positions of one (b, i, h) row): its
    arguments are ``inputs`` (q, k, v, bias), the mask, ``outputs`` (and statistics), the tensors' strides,
    the mask's, (B·I·H, I, H, J, D), the folded grid's two and ``scalars``; constexprs from ``tiles``."""
    b, i, h, j, d = q.shape
    mask_arg, mask_strides, meta = launch_meta(q, mask, tiles)
    rows = row_grid(j, block, b * i * h)
    launch(kernel, rows.grid, *inputs, mask_arg, *outputs, *tensor_strides, *mask_strides,
           b * i * h, i, h, j, d, *rows.args, *scalars, **meta)  # fmt: skip


def launch_bias_grad(
    kernel: Any, tiles: Tiles, q: Tensor, mask: Tensor | None,
    inputs: tuple[Tensor, ...], others: tuple[Tensor, ...], tensor_strides: tuple[int, ...], scalars: tuple,
) -> Tensor:
    """Launch a bias-gradient kernel (one program per (query tile, key tile, split of rows)) and return its
    fp32 partials: arguments ``inputs``, the mask, ``others`` then the partial buffer, the strides, the mask's,
    (B, I, H, J, D), ``scalars``, rows per program and the partials' row stride."""
    b, i, h, j, d = q.shape
    mask_arg, mask_strides, meta = launch_meta(q, mask, tiles)
    grid, per_program, part = bias_grad_partials(q, tiles)
    launch(kernel, grid, *inputs, mask_arg, *others, part, *tensor_strides, *mask_strides,
           b, i, h, j, d, *scalars, per_program, part.stride(-2), **meta)  # fmt: skip
    return part
