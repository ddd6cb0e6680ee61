"""Where the Triton kernels can run and with which tiles.

Triton reads ``TRITON_INTERPRET`` when a kernel is decorated (SPEC.md §5), so the interpreter state is
captured once at import; set it before importing the kernel modules (tests/conftest.py does).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_importable() -> bool:
    """True when the ``triton`` package is installed (it is Linux-only)."""
    return importlib.util.find_spec("triton") is not None


def triton_can_run(device: torch.device) -> bool:
    """True when Triton can launch on tensors of ``device``: CUDA, or CPU under the interpreter."""
    if not triton_importable():
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and INTERPRETING


@dataclass(frozen=True)
class Tiles:
    """Tile sizes of one kernel family: query rows (block_m) × key columns (block_n) per program."""

    block_m: int
    block_n: int
    num_warps: int = 4
    num_stages: int = 2


_override: Tiles | None = None


@contextlib.contextmanager
def tile_override(block_m: int, block_n: int) -> Iterator[None]:
    """Force tile sizes inside the block, e.g. small tiles so tests at n ≤ 64 run the multi-tile loops.

    GPUs need tiles of at least 16 for ``tl.dot``; the interpreter accepts smaller ones.
    """
    global _override
    previous, _override = _override, Tiles(block_m, block_n)
    try:
        yield
    finally:
        _override = previous


def choose_tiles(n_keys: int, head_dim: int) -> Tiles:
    """Tiles for a row of ``n_keys`` tokens and head dim ``head_dim``.

    The interpreter's cost is per program per loop iteration, so it gets one wide tile (64); on a GPU 64×64
    with 4 warps keeps the fp32 accumulators of the backward kernels in registers at head dim ≤ 64.
    """
    if _override is not None:
        return _override
    if INTERPRETING:
        return Tiles(64, 64)
    if head_dim > 64:
        return Tiles(32, 32)
    return Tiles(64, 64, num_warps=4, num_stages=2 if n_keys <= 256 else 3)


def dot_precision(dtype: torch.dtype) -> str:
    """``tl.dot`` input precision for fp32 inputs: TF32 only where torch itself allows it for matmuls."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"


def rows_per_split(n_rows: int, n_tiles: int, batch_heads: int, target_programs: int = 1024) -> int:
    """Rows i reduced by one program of a bias-gradient kernel.

    The bias gradient is a sum over the I rows; each program keeps one (block_m × block_n) tile in registers
    over its rows and writes one fp32 partial, so splitting rows trades partial-buffer memory
    (splits × B × H × J × J × 4 bytes) for parallelism when the tile grid alone is small.
    """
    programs = max(1, n_tiles * batch_heads)
    splits = max(1, min(n_rows, target_programs // programs))
    return -(-n_rows // splits)


def dense(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when its memory is dense in some dimension order (a transpose or permute of a contiguous
    tensor, e.g. the pair tensor of ending-node attention), else a contiguous copy.

    Gradients are allocated with ``torch.empty_like(t)``, which keeps the strides only of such tensors; the
    kernels write a gradient through its input's strides, so both must agree.
    """
    return t if torch.empty_like(t).stride() == t.stride() else t.contiguous()
