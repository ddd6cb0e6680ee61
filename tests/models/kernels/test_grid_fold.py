"""Rows past CUDA's grid-axis-1 limit (65,535) fold into axis 0: the launch arithmetic, and the kernels under
the interpreter with the limit lowered so that a small problem folds, with a partial last group."""

import pytest
import torch
from test_triton_triangle_attention import compare_with_reference, make_inputs

from models.kernels import tile_override
from models.kernels.launch_config import triton_can_run

triton = pytest.importorskip("triton")
from models.kernels.launch import MAX_GRID_Y, grid_limit, row_grid  # noqa: E402


@pytest.mark.parametrize(("n", "heads"), [(4096, 16), (8192, 16), (2048, 4)])
def test_row_grid_stays_inside_cuda_limits_and_covers_every_row(n, heads):
    """c_z 512 / 16 heads at n = 4,096: B·I·H = 65,536 rows, one past the limit; the folded grid covers them."""
    rows = n * heads
    grid = row_grid(n, 64, rows)
    axis0, axis1 = grid.grid
    assert axis1 <= MAX_GRID_Y and axis0 < 2**31
    assert axis0 == grid.n_tiles * grid.fold == (n // 64) * grid.fold
    assert (axis1 - 1) * grid.fold < rows <= axis1 * grid.fold  # the last group holds the last rows
    assert grid.fold == (1 if rows <= MAX_GRID_Y else -(-rows // MAX_GRID_Y))


@pytest.mark.skipif(not triton_can_run(torch.device("cpu")), reason="needs TRITON_INTERPRET=1")
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_folded_grid_matches_reference_with_partial_last_group(variant):
    """B·I·H = 2·5·2 = 20 rows with the limit at 3: fold 7, three groups, the last one with a row of padding
    programs; output and every gradient still match the reference (fp32, 1e-4 of the scale)."""
    q, k, v, bias, mask = make_inputs(5, 2, 21, 16, batch=2, seed=4)
    assert row_grid(21, 16, 20).fold == 1
    with grid_limit(3), tile_override(16, 16):
        grid = row_grid(21, 16, 20)
        assert (grid.fold, grid.grid) == (7, (2 * 7, 3))
        compare_with_reference(variant, q, k, v, bias, mask)
