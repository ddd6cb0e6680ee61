"""Triangle multiplication under bf16 autocast computes its a/b projections and the triangle products in bf16
(the mask, taken from the fp32 LayerNorm output's dtype, used to promote them to fp32), and its values in fp32
are unchanged."""

import pytest
import torch

from models.modules.triangle_multiplication import TriangleMultiplication


@pytest.mark.parametrize("outgoing", [True, False])
def test_a_b_and_products_in_the_autocast_dtype(outgoing, monkeypatch):
    torch.manual_seed(0)
    module = TriangleMultiplication(16, 16, outgoing=outgoing)
    z, mask = torch.randn(1, 12, 12, 16), torch.ones(1, 12, 12, dtype=torch.bool)
    mask[:, 10:] = False
    dtypes = []
    real = TriangleMultiplication._gated
    record = staticmethod(lambda *a: dtypes.append((r := real(*a)).dtype) or r)
    monkeypatch.setattr(TriangleMultiplication, "_gated", record)
    products = []
    real_matmul = torch.matmul

    def matmul(a, b):
        out = real_matmul(a, b)
        if a.dim() == 4:  # the (B, h, N, N) triangle products
            products.append(out.dtype)
        return out

    monkeypatch.setattr(torch, "matmul", matmul)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module(z, mask)
    assert dtypes == [torch.bfloat16, torch.bfloat16] and products == [torch.bfloat16]


def test_fp32_values_unchanged_by_the_mask_cast():
    """Without autocast the mask is fp32 as before: the same numbers as σ(g z)·(p z)·mask written out."""
    torch.manual_seed(1)
    module = TriangleMultiplication(8, 8, outgoing=True)
    z = torch.randn(1, 6, 6, 8)
    mask = torch.rand(1, 6, 6) > 0.3
    z_t = module.norm_in(z).reshape(1, 36, 8).transpose(1, 2)
    m = mask.reshape(1, 1, 36).float()
    want = torch.sigmoid(module.gate_a.weight @ z_t) * (module.proj_a.weight @ z_t) * m
    got = TriangleMultiplication._gated(z_t, module.proj_a, module.gate_a, m)
    assert torch.equal(got, want)
