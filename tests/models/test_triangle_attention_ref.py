"""The three triangle-attention variants against naive per-row, per-head formulas written out here."""

import pytest
import torch

from models.triangle_attention_ref import triangle_attention_torch


def _inputs(seed: int = 0, b: int = 2, n: int = 7, h: int = 2, d: int = 4):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, n, h, n, d, generator=g, dtype=torch.float64) for _ in range(3))
    bias = torch.randn(b, h, n, n, generator=g, dtype=torch.float64)
    tokens = torch.ones(b, n, dtype=torch.bool)
    tokens[1, -2:] = False  # second example has two padded tokens
    mask = tokens[:, :, None] & tokens[:, None, :]
    return q, k, v, bias, mask


def _naive(q, k, v, bias, mask, variant, psi=torch.relu):
    b_, n_i, n_h, n_j, d = q.shape
    out = torch.zeros_like(q)
    for b in range(b_):
        for i in range(n_i):
            for h in range(n_h):
                keys = mask[b, i].nonzero().flatten()
                if len(keys) == 0:
                    continue
                qi, ki, vi = q[b, i, h] / d**0.5, k[b, i, h, keys], v[b, i, h, keys]
                bij = bias[b, h][:, keys]
                if variant == "vanilla":
                    out[b, i, h] = torch.softmax(qi @ ki.T + bij, dim=-1) @ vi
                elif variant == "additive":
                    out[b, i, h] = torch.relu(qi) @ (torch.relu(ki).T @ vi) + psi(bij) @ vi
                else:
                    out[b, i, h] = ((torch.relu(qi) @ torch.relu(ki).T) * torch.sigmoid(bij)) @ vi
    return out


@pytest.mark.parametrize("variant", ["vanilla", "additive", "gated"])
def test_matches_naive_per_row_formula(variant):
    q, k, v, bias, mask = _inputs()
    got = triangle_attention_torch(q, k, v, bias, mask, variant=variant)
    torch.testing.assert_close(got, _naive(q, k, v, bias, mask, variant), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("activation", "psi"),
    [("identity", lambda x: x), ("softplus", torch.nn.functional.softplus), ("relu", torch.relu)],
)
def test_additive_bias_activation(activation, psi):
    q, k, v, bias, mask = _inputs(seed=1)
    got = triangle_attention_torch(q, k, v, bias, mask, variant="additive", bias_activation=activation)
    torch.testing.assert_close(got, _naive(q, k, v, bias, mask, "additive", psi), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("variant", ["vanilla", "additive", "gated"])
def test_fully_masked_rows_give_zero_and_finite_grads(variant):
    q, k, v, bias, mask = _inputs(seed=2)
    for t in (q, k, v, bias):
        t.requires_grad_(True)
    out = triangle_attention_torch(q, k, v, bias, mask, variant=variant)
    assert torch.all(out[1, -2:] == 0)  # rows of padded tokens see no keys
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v, bias))


@pytest.mark.parametrize("variant", ["vanilla", "additive", "gated"])
def test_padded_keys_change_nothing(variant):
    q, k, v, bias, mask = _inputs(seed=3)
    ref = triangle_attention_torch(q, k, v, bias, mask, variant=variant)
    k2, v2, bias2 = k.clone(), v.clone(), bias.clone()
    k2[1, :, :, -2:] = 1e3
    v2[1, :, :, -2:] = -1e3
    bias2[1, :, :, -2:] = 50.0
    got = triangle_attention_torch(q, k2, v2, bias2, mask, variant=variant)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_bad_shapes_raise():
    q, k, v, bias, mask = _inputs()
    with pytest.raises(ValueError, match="bias shape"):
        triangle_attention_torch(q, k, v, bias[:, :, :-1], mask, variant="vanilla")
    with pytest.raises(ValueError, match="variant"):
        triangle_attention_torch(q, k, v, bias, mask, variant="cosine")
