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


# Every Triton a supported torch (2.4 … 2.14) pins, 3.0 … 3.8: a CUDA torch brings its own and installing
# this project keeps it (pyproject.toml takes the same range). The kernels use only APIs present since 3.0
# (``tl.dot(input_precision=)``, ``tl.zeros_like``, ``tl.exp2``); they are compiled and tested with 3.8.
TRITON_RANGE = ((3, 0), (3, 9))


def triton_version_problem() -> str | None:
    """Why the installed Triton cannot run the kernels (not installed, or outside ``TRITON_RANGE``); None if
    it can. Reads the package metadata only, without importing Triton."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("triton")
    except PackageNotFoundError:  # a source checkout on the path: trust it
        return None
    numbers = tuple(int(x) for x in found.split("+")[0].split(".")[:2] if x.isdigit())
    (lo, hi) = TRITON_RANGE
    if not lo <= numbers < hi:
        return (f"triton {found} is installed; the kernels need triton >= {lo[0]}.{lo[1]}, < {hi[0]}.{hi[1]} "
                f"(the Triton of a CUDA torch 2.4 … 2.14 build, or pip install 'triton>={lo[0]}.{lo[1]},"
                f"<{hi[0]}.{hi[1]}')")  # fmt: skip
    return None


def triton_importable() -> bool:
    """True when a Triton the kernels support is installed (Triton is Linux-only)."""
    return triton_version_problem() is None


def triton_can_run(device: torch.device) -> bool:
    """True when Triton can launch on tensors of ``device``: CUDA, or CPU under the interpreter."""
    if not triton_importable():
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and INTERPRETING


@dataclass(frozen=True)
class Tiles:
    """One launch configuration: query rows (block_m) × key columns (block_n) per program, warps, stages."""

    block_m: int
    block_n: int
    num_warps: int = 4
    num_stages: int = 2

    def __str__(self) -> str:
        return f"{self.block_m}x{self.block_n}/w{self.num_warps}/s{self.num_stages}"


_override: Tiles | None = None


@contextlib.contextmanager
def tile_override(block_m: int, block_n: int, num_warps: int = 4, num_stages: int = 2) -> Iterator[None]:
    """Force one launch configuration inside the block: small tiles so tests at n ≤ 64 run the multi-tile
    loops, each candidate in turn for the self-check and the compile check.

    GPUs need tiles of at least 16 for ``tl.dot``; the interpreter accepts smaller ones.
    """
    global _override
    previous, _override = _override, Tiles(block_m, block_n, num_warps, num_stages)
    try:
        yield
    finally:
        _override = previous


# The configurations the kernels are tuned over on a GPU (``tuning.tuned`` times each once per problem size and
# keeps the fastest), by padded head dim and input dtype: the pipeline depth for the model's setting (16-bit,
# head dim ≤ 64), one configuration elsewhere. Each compiles for sm_80 and sm_90 with zero spills for every
# kernel (benchmarks/kernel_compile.py; BENCHMARKS.md, "Kernels proven without a GPU"), and the self-check
# runs every one.
CANDIDATES: dict[tuple[str, str], tuple[Tiles, ...]] = {
    ("d<=64", "16-bit"): (Tiles(64, 64, 4, 2), Tiles(64, 64, 4, 3)),
    ("d<=64", "fp32"): (Tiles(64, 64, 4, 2),),
    ("d=128", "16-bit"): (Tiles(32, 32, 4, 2),),
    ("d=128", "fp32"): (Tiles(32, 32, 4, 2),),
}


def candidates(head_dim: int, dtype: torch.dtype) -> tuple[Tiles, ...]:
    """The configurations a problem of ``head_dim`` and ``dtype`` may run with: the override when one is set,
    one wide tile under the interpreter (its cost is per program per loop iteration), else ``CANDIDATES``."""
    if _override is not None:
        return (_override,)
    if INTERPRETING:
        return (Tiles(64, 64),)
    return CANDIDATES[("d<=64" if head_dim <= 64 else "d=128", "fp32" if dtype == torch.float32 else "16-bit")]


@contextlib.contextmanager
def tf32_allowed(allowed: bool) -> Iterator[None]:
    """Set torch's TF32 matmul switch, which the kernels' fp32 dots follow (``dot_precision``), for the block."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def dot_precision(dtype: torch.dtype) -> str:
    """``tl.dot`` input precision for fp32 inputs: TF32 only where torch itself allows it for matmuls."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"


def rows_per_split(n_rows: int, n_tiles: int, batch_heads: int, target_programs: int = 1024) -> int:
    """Rows i reduced by one program of a dQ / bias-gradient kernel (``n_tiles`` query tiles per head).

    The bias gradient is a sum over the I rows; each program sums its query tile's (block_m × J) rows of it over
    its split of rows and writes one fp32 partial, so splitting rows trades partial-buffer memory
    (splits × B × H × J × J × 4 bytes) for parallelism when the tile grid alone is small.
    """
    programs = max(1, n_tiles * batch_heads)
    splits = max(1, min(n_rows, target_programs // programs))
    return -(-n_rows // splits)


INT32_LIMIT = 2**31
# Triton specialises an integer argument that is a multiple of 16 as such ("tt.divisibility"), and only a row
# stride known to be one gives aligned, vectorised loads of a (block × block) tile: at a length such as 200 the
# unaligned bias rows made the kernels spill (BENCHMARKS.md, "Kernels proven without a GPU").
ALIGN = 16


def in_tile_safe(t: torch.Tensor) -> bool:
    """Whether every offset inside ``t``'s last two dims (a (J, D) plane of q, a (J, J) bias) fits the kernels'
    int32 in-tile offsets (``tile_io``)."""
    extent = sum((size - 1) * abs(stride) for size, stride in zip(t.shape[-2:], t.stride()[-2:], strict=True))
    return extent < INT32_LIMIT


def kernel_input(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when the kernels can read it in place, else a contiguous copy.

    In place needs memory that is dense in some dimension order (a transpose or permute of a contiguous tensor,
    e.g. ``layouts.split_heads``' views): gradients are allocated with ``torch.empty_like(t)``, which keeps the
    strides only of such tensors, and the kernels write a gradient through its input's strides, so both must
    agree. It also needs the last two dims' extent inside int32 (``in_tile_safe``).
    """
    if torch.empty_like(t).stride() == t.stride() and in_tile_safe(t):
        return t
    return t.contiguous()


def padded_length(n: int) -> int:
    """``n`` rounded up to a multiple of ``ALIGN``."""
    return -(-n // ALIGN) * ALIGN


def aligned_rows(t: torch.Tensor) -> torch.Tensor:
    """``t`` (…, J, J) itself when its last dim is contiguous and every other stride is a multiple of ``ALIGN``,
    else a copy into a buffer whose rows are padded to ``padded_length(J)`` (returned as the (…, J, J) view).
    The pair bias and gate: a permuted one (the module's) or an odd length gets one O(n²) copy per call."""
    if t.stride(-1) == 1 and all(s % ALIGN == 0 for s in t.stride()[:-1]) and in_tile_safe(t):
        return t
    buffer = t.new_empty(*t.shape[:-1], padded_length(t.shape[-1]))
    view = buffer[..., : t.shape[-1]]
    view.copy_(t)
    return view
