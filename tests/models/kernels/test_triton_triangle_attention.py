"""The Triton kernels (run by the interpreter on CPU) against the PyTorch reference and the per-row formulas.

fp32 criterion (issue 5): max |kernel − reference| ≤ 1e-4 × max |reference| for the output and every gradient.
Interpreter cost is per program per loop iteration (SPEC.md §5), so shapes stay at n ≤ 64 with few rows.
"""

import pytest
import torch
from naive_formulas import naive_triangle_attention

from models.kernels import tile_override, triangle_attention
from models.kernels.launch_config import triton_can_run
from models.triangle_attention_ref import triangle_attention_torch

pytestmark = pytest.mark.skipif(
    not triton_can_run(torch.device("cpu")), reason="needs triton with TRITON_INTERPRET=1 (tests/conftest.py)"
)

TRITON_VARIANTS = ["vanilla", "gated"]


def make_inputs(
    n_rows: int, n_heads: int, n: int, d: int, seed: int = 0, dtype=torch.float32, batch: int = 1
):
    """Random q, k, v (B, I, H, J, D), bias (B, H, J, J) and a padded-token key mask (B, I, J)."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, n_rows, n_heads, n, d, generator=g).to(dtype) for _ in range(3))
    bias = torch.randn(batch, n_heads, n, n, generator=g).to(dtype)
    mask = torch.ones(batch, n_rows, n, dtype=torch.bool)
    mask[:, :, n - n // 5 :] = False  # padded tokens at the end of the row
    mask[:, 0, 3] = False  # a hole in the first row
    return q, k, v, bias, mask


def outputs_and_grads(fn, q, k, v, bias, grad_out):
    leaves = [t.detach().clone().requires_grad_(True) for t in (q, k, v, bias)]
    out = fn(*leaves)
    grads = torch.autograd.grad(out, leaves, grad_out)
    return [out.detach(), *grads]


def assert_close_rel(actual, expected, rel, name):
    scale = expected.abs().max().clamp_min(1e-6)
    err = (actual.float() - expected.float()).abs().max()
    assert torch.isfinite(actual).all(), f"{name}: non-finite values"
    assert err <= rel * scale, f"{name}: max abs error {err:.3g} > {rel} × scale {scale:.3g}"


def compare_with_reference(variant, q, k, v, bias, mask, rel=1e-4):
    grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(1)).to(q.dtype)

    def kernel(q, k, v, b):
        return triangle_attention(q, k, v, b, mask, variant=variant, impl="triton")

    def reference(q, k, v, b):
        return triangle_attention_torch(q, k, v, b, mask, variant=variant)

    got = outputs_and_grads(kernel, q, k, v, bias, grad_out)
    want = outputs_and_grads(reference, q, k, v, bias, grad_out)
    for name, a, e in zip(["out", "dq", "dk", "dv", "dbias"], got, want, strict=True):
        assert a.shape == e.shape and a.dtype == e.dtype, name
        assert_close_rel(a, e, rel, f"{variant} {name}")
    return got


@pytest.mark.parametrize("variant", TRITON_VARIANTS)
def test_multi_tile_odd_n_with_padding_matches_reference(variant):
    """n = 37 with 16-wide tiles: three query and key tiles, a ragged last tile, padded keys, D = 32."""
    q, k, v, bias, mask = make_inputs(n_rows=3, n_heads=2, n=37, d=32)
    with tile_override(16, 16):
        got = compare_with_reference(variant, q, k, v, bias, mask)
    naive = naive_triangle_attention(q, k, v, bias, mask, variant)
    assert_close_rel(got[0], naive, 1e-4, f"{variant} vs naive formula")


@pytest.mark.parametrize("variant", TRITON_VARIANTS)
@pytest.mark.parametrize("d", [16, 64])
def test_head_dims_16_and_64_match_reference(variant, d):
    """One wide tile (the interpreter default, 64) at n = 64 and n = 29, batch of two."""
    n = 64 if d == 16 else 29
    q, k, v, bias, mask = make_inputs(n_rows=2, n_heads=1, n=n, d=d, seed=d, batch=2)
    compare_with_reference(variant, q, k, v, bias, mask)


@pytest.mark.parametrize("variant", TRITON_VARIANTS)
def test_fully_masked_row_gives_zero_output_and_zero_grads(variant):
    q, k, v, bias, mask = make_inputs(n_rows=2, n_heads=1, n=20, d=16)
    mask[:, 1] = False
    grad_out = torch.ones(q.shape)
    out, dq, dk, dv, dbias = outputs_and_grads(
        lambda *t: triangle_attention(*t, mask, variant=variant, impl="triton"), q, k, v, bias, grad_out
    )
    assert torch.all(out[:, 1] == 0) and torch.isfinite(out).all()
    for g in (dq, dk, dv):
        assert torch.all(g[:, 1] == 0) and torch.isfinite(g).all()
    assert torch.isfinite(dbias).all() and dbias.abs().max() > 0  # row 0 still contributes


@pytest.mark.parametrize("variant", TRITON_VARIANTS)
def test_ending_node_views_are_read_in_place(variant):
    """Ending-node attention passes permuted views of a contiguous pair projection; no copy, same result."""
    b, n, h, d = 1, 24, 2, 16
    g = torch.Generator().manual_seed(3)
    qkv = torch.randn(3, b, n, n, h, d, generator=g)  # projections of z, laid out (B, N_row, N_col, H, D)
    q, k, v = (t.permute(0, 2, 3, 1, 4) for t in qkv)  # rows = second index: (B, I, H, J, D) views
    assert not q.is_contiguous()
    bias = torch.randn(b, n, n, h, generator=g).permute(0, 3, 2, 1)  # (B, H, J, J), transposed, strided
    mask = torch.ones(b, n, n, dtype=torch.bool)
    mask[:, :, -3:] = False
    with tile_override(16, 16):
        got = compare_with_reference(variant, q, k, v, bias, mask)
    # Gradients come back in the inputs' (permuted) layout, i.e. the kernels wrote through the input strides.
    assert got[1].stride() == q.stride() and got[4].shape == bias.shape
    dense = [t.contiguous() for t in (q, k, v, bias)]
    contiguous = triangle_attention(*dense, mask, variant=variant, impl="triton")
    assert_close_rel(got[0], contiguous, 1e-6, "strided vs contiguous")


@pytest.mark.parametrize("variant", TRITON_VARIANTS)
def test_no_mask_equals_all_true_mask(variant):
    q, k, v, bias, _ = make_inputs(n_rows=2, n_heads=1, n=18, d=16)
    ones = torch.ones(1, 2, 18, dtype=torch.bool)
    a = triangle_attention(q, k, v, bias, None, variant=variant, impl="triton")
    c = triangle_attention(q, k, v, bias, ones, variant=variant, impl="triton")
    assert torch.equal(a, c)


@pytest.mark.parametrize("variant", TRITON_VARIANTS)
def test_bf16_inputs_accumulate_in_fp32(variant):
    """bf16 in, bf16 out; error against the fp32 reference on the same (rounded) inputs at bf16 resolution."""
    q, k, v, bias, mask = make_inputs(n_rows=2, n_heads=1, n=33, d=32, dtype=torch.bfloat16)
    out = triangle_attention(q, k, v, bias, mask, variant=variant, impl="triton")
    assert out.dtype == torch.bfloat16
    want = triangle_attention_torch(q.float(), k.float(), v.float(), bias.float(), mask, variant=variant)
    assert_close_rel(out, want, 1e-2, f"{variant} bf16")


def test_kernels_are_deterministic():
    """No atomics: two backward passes give bit-identical gradients."""
    q, k, v, bias, mask = make_inputs(n_rows=2, n_heads=2, n=20, d=16)
    grad_out = torch.randn(q.shape)

    def run():
        return outputs_and_grads(
            lambda *t: triangle_attention(*t, mask, variant="vanilla", impl="triton"), q, k, v, bias, grad_out
        )

    for a, c in zip(run(), run(), strict=True):
        assert torch.equal(a, c)


@pytest.mark.parametrize("variant", TRITON_VARIANTS)
def test_larger_sweep_matches_reference(variant):
    """n = 64 with 16-wide tiles (four tiles per axis), four rows, four heads (the c_z = 128 head count)."""
    q, k, v, bias, mask = make_inputs(n_rows=4, n_heads=4, n=64, d=32, seed=7)
    with tile_override(16, 16):
        compare_with_reference(variant, q, k, v, bias, mask)


@pytest.mark.parametrize("variant", TRITON_VARIANTS)
@pytest.mark.parametrize("where", ["query", "key"])
def test_nan_propagates_as_in_the_torch_path(variant, where):
    """A NaN in q (one query) or in an unmasked key (every query of its row) reaches the output where the
    PyTorch path puts it; the gated kernels' φ used to turn it into 0 (maxnum)."""
    q, k, v, bias, mask = make_inputs(n_rows=2, n_heads=1, n=20, d=16)
    if where == "query":
        q[0, 0, 0, 3, 5] = float("nan")
    else:
        k[0, 1, 0, 2, 0] = float("nan")
    got = triangle_attention(q, k, v, bias, mask, variant=variant, impl="triton")
    want = triangle_attention(q, k, v, bias, mask, variant=variant, impl="torch")
    assert got.isnan().any()
    assert torch.equal(got.isnan(), want.isnan())
    finite = ~want.isnan()
    assert_close_rel(got[finite], want[finite], 1e-4, f"{variant} finite part")


@pytest.mark.parametrize(("op", "variant"), [("tri_att_vanilla", "vanilla"), ("tri_att_gated", "gated")])
def test_fake_ops_give_the_real_ops_layouts(op, variant):
    """torch.compile plans with the fake ops' strides: they must be the real kernels' (forward and backward),
    also for the module's permuted bias, whose gradient the kernels return contiguous."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    q, k, v, _, mask = make_inputs(n_rows=2, n_heads=2, n=20, d=16)
    q = q.transpose(2, 3).contiguous().transpose(2, 3)  # dense, not contiguous, as split_heads makes it
    bias = torch.rand(1, 20, 20, 2).permute(0, 3, 1, 2)
    fwd, bwd = getattr(torch.ops.seedfold, op), getattr(torch.ops.seedfold, op + "_bwd")
    real_fwd = fwd(q, k, v, bias, mask, 0.25)
    real_out = real_fwd[0] if variant == "vanilla" else real_fwd
    extra = (real_fwd[0], real_fwd[1]) if variant == "vanilla" else ()
    real_bwd = bwd(torch.ones_like(real_out), q, k, v, bias, mask, *extra, 0.25)
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fake = [mode.from_tensor(t) for t in (q, k, v, bias, mask)]
        fake_fwd = fwd(*fake, 0.25)
        fake_out = fake_fwd[0] if variant == "vanilla" else fake_fwd
        fake_extra = (fake_fwd[0], fake_fwd[1]) if variant == "vanilla" else ()
        fake_bwd = bwd(torch.ones_like(fake_out), *fake[:4], fake[4], *fake_extra, 0.25)
    real_all = (real_fwd if variant == "vanilla" else (real_fwd,)) + tuple(real_bwd)
    fake_all = (fake_fwd if variant == "vanilla" else (fake_fwd,)) + tuple(fake_bwd)
    assert [t.stride() for t in fake_all] == [t.stride() for t in real_all]
    assert real_bwd[3].is_contiguous() and real_bwd[0].stride() == q.stride()
