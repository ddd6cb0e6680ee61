"""GPU checks of the Triton kernels: bf16 at model sizes, large n, O(n²) memory. Skipped without CUDA."""

import pytest
import torch

from models.kernels import triangle_attention
from models.triangle_attention_ref import triangle_attention_torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def make_inputs(n: int, n_rows: int, n_heads: int = 4, d: int = 32, dtype=torch.bfloat16, seed: int = 0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    shape = (1, n_rows, n_heads, n, d)
    q, k, v = (torch.randn(shape, generator=g, device="cuda").to(dtype) for _ in range(3))
    bias = torch.randn(1, n_heads, n, n, generator=g, device="cuda").to(dtype)
    mask = torch.ones(1, n_rows, n, dtype=torch.bool, device="cuda")
    mask[..., n - n // 7 :] = False
    return q, k, v, bias, mask


def grads(fn, tensors, grad_out):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    return [out.detach(), *torch.autograd.grad(out, leaves, grad_out)]


@pytest.mark.parametrize("variant", ["vanilla", "gated"])
@pytest.mark.parametrize(("n", "n_rows", "d"), [(256, 16, 32), (333, 8, 16), (512, 4, 64)])
def test_bf16_kernel_matches_fp32_reference(variant, n, n_rows, d):
    """bf16 kernel vs the fp32 reference on the same rounded inputs: bf16-level error (2e-2 of the scale)."""
    q, k, v, bias, mask = make_inputs(n, n_rows, d=d)
    grad_out = torch.randn(q.shape, device="cuda").to(q.dtype)
    kernel = lambda *t: triangle_attention(*t, mask, variant=variant, impl="triton")  # noqa: E731
    got = grads(kernel, (q, k, v, bias), grad_out)
    want = grads(
        lambda *t: triangle_attention_torch(*t, mask, variant=variant),
        [t.float() for t in (q, k, v, bias)], grad_out.float(),
    )  # fmt: skip
    for name, a, e in zip(["out", "dq", "dk", "dv", "dbias"], got, want, strict=True):
        assert a.dtype == torch.bfloat16, name
        scale = e.abs().max()
        err = (a.float() - e).abs().max()
        assert err <= 2e-2 * scale, f"{variant} n={n} {name}: {err:.3g} > 2e-2 × {scale:.3g}"


@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_fp32_kernel_matches_reference_on_gpu(variant, monkeypatch):
    """fp32 inputs use TF32 dots only when torch allows TF32 matmuls; with it off the 1e-4 criterion holds."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    q, k, v, bias, mask = make_inputs(200, 8, dtype=torch.float32)
    grad_out = torch.randn(q.shape, device="cuda")
    kernel = lambda *t: triangle_attention(*t, mask, variant=variant, impl="triton")  # noqa: E731
    got = grads(kernel, (q, k, v, bias), grad_out)
    want = grads(lambda *t: triangle_attention_torch(*t, mask, variant=variant), (q, k, v, bias), grad_out)
    for a, e in zip(got, want, strict=True):
        assert (a - e).abs().max() <= 1e-4 * e.abs().max()


@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_auto_picks_triton_on_cuda(variant, monkeypatch):
    import models.triangle_attention_ref as ref

    def forbidden(*args, **kwargs):
        raise AssertionError("auto ran the PyTorch reference on CUDA")

    monkeypatch.setattr(ref, "triangle_attention_torch", forbidden)
    q, k, v, bias, mask = make_inputs(64, 4)
    assert triangle_attention(q, k, v, bias, mask, variant=variant).shape == q.shape


@pytest.mark.parametrize("n", [512, 1024])
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_peak_memory_is_quadratic_in_n(variant, n):
    """fwd+bwd over all rows stays far below the (B, I, H, J, J) logits the naive path builds."""
    q, k, v, bias, mask = make_inputs(n, n)
    leaves = [t.requires_grad_(True) for t in (q, k, v, bias)]
    inputs_bytes = sum(t.numel() * t.element_size() for t in leaves)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    triangle_attention(*leaves, mask, variant=variant, impl="triton").sum().backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - start
    logits_bytes = n * 4 * n * n * 2  # one bf16 logits tensor (I, H, J, J)
    # outputs, gradients, fp32 lse/delta and bias-gradient partials: a handful of input-sized buffers
    assert extra < 8 * inputs_bytes + 64 * n * n * 4
    assert extra < logits_bytes / 4


@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_ending_node_layout_on_gpu(variant):
    n, h, d = 128, 4, 32
    proj = torch.randn(3, 1, n, n, h, d, device="cuda", dtype=torch.bfloat16)
    q, k, v = (t.permute(0, 2, 3, 1, 4) for t in proj)
    bias = torch.randn(1, n, n, h, device="cuda", dtype=torch.bfloat16).permute(0, 3, 2, 1)
    mask = torch.ones(1, n, n, dtype=torch.bool, device="cuda")
    strided = triangle_attention(q, k, v, bias, mask, variant=variant, impl="triton")
    dense = [t.contiguous() for t in (q, k, v, bias)]
    dense = triangle_attention(*dense, mask, variant=variant, impl="triton")
    assert strided.stride() == q.stride()
    torch.testing.assert_close(strided, dense, rtol=0, atol=0)


@pytest.mark.parametrize("op_name", ["tri_att_vanilla", "tri_att_gated"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_custom_ops_pass_opcheck_on_cuda(op_name, dtype):
    q, k, v, bias, mask = make_inputs(48, 3, dtype=dtype)
    if op_name == "tri_att_gated":
        bias = torch.sigmoid(bias)
    args = tuple(t.requires_grad_(True) for t in (q, k, v, bias)) + (mask, 32**-0.5)
    torch.library.opcheck(getattr(torch.ops.seedfold, op_name), args)


@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_compiles_fullgraph_with_inductor_on_cuda(variant):
    q, k, v, bias, mask = make_inputs(96, 4)

    def loss(q, k, v, bias):
        return triangle_attention(q, k, v, bias, mask, variant=variant, impl="triton").float().square().sum()

    leaves = [t.detach().requires_grad_(True) for t in (q, k, v, bias)]
    compiled = torch.compile(loss, fullgraph=True)
    got = torch.autograd.grad(compiled(*leaves), leaves)
    want = torch.autograd.grad(loss(*leaves), leaves)
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e, rtol=2e-2, atol=2e-2 * e.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("head_dim", [16, 32, 64])
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_self_check_passes_on_this_gpu(variant, head_dim, dtype):
    from models.kernels.self_check import run_self_check

    result = run_self_check(variant, torch.device("cuda"), dtype, head_dim)
    assert result.passed, result.detail


@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_folded_grid_on_gpu(variant):
    """The grid folding with the axis-1 limit lowered to 7: same result as the unfolded launch."""
    from models.kernels.launch import grid_limit

    q, k, v, bias, mask = make_inputs(130, 9, dtype=torch.float32)
    grad_out = torch.randn(q.shape, device="cuda")
    kernel = lambda *t: triangle_attention(*t, mask, variant=variant, impl="triton")  # noqa: E731
    plain = grads(kernel, (q, k, v, bias), grad_out)
    with grid_limit(7):
        folded = grads(kernel, (q, k, v, bias), grad_out)
    for a, e in zip(folded, plain, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_self_check_passes_for_every_tuner_candidate(variant, dtype):
    """The check ``auto`` relies on (n = 150, the model's layouts, every configuration, fp64 reference)."""
    from models.kernels import self_check

    result = self_check.run_self_check(variant, torch.device("cuda"), dtype, 32)
    assert result.passed, result.detail
