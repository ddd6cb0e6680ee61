"""Residual order of the diffusion and atom transformer blocks: AF3's released code is sequential,
a ← a + Attn(a); a ← a + Trans(a); the old parallel order a + Attn(a) + Trans(a) stays as an explicit option."""

import pytest
import torch

from models.config import ModelConfig
from models.modules.atom_attention import AtomTransformer
from models.modules.atom_windows import AtomWindows
from models.modules.diffusion import DiffusionTransformer
from models.modules.primitives import residual_block
from tests.models.conftest import tiny_config


def test_residual_block_order_on_scalar_maps():
    a = torch.tensor([1.0])
    # sequential: 1 + 2·1 = 3, then 3 + (3 + 1) = 7; parallel: 1 + 2·1 + (1 + 1) = 5
    assert residual_block(a, lambda x: 2 * x, lambda x: x + 1, "sequential").item() == 7.0
    assert residual_block(a, lambda x: 2 * x, lambda x: x + 1, "parallel").item() == 5.0
    with pytest.raises(ValueError, match="block order 'serial'"):
        residual_block(a, lambda x: x, lambda x: x, "serial")


def _randomise(module: torch.nn.Module) -> None:
    # AF3's init zeroes each branch's final projection (a block starts as the identity, in either order), so the
    # two orders can only differ once the branches are non-zero.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("order", ["sequential", "parallel"])
def test_diffusion_transformer_block_computes_its_order(order):
    cfg = tiny_config(transformer_block_order=order)
    module = DiffusionTransformer(cfg).eval()
    _randomise(module)
    g = torch.Generator().manual_seed(1)
    a = torch.randn(1, 2, 5, cfg.c_token, generator=g)
    s = torch.randn(1, 2, 5, cfg.c_s, generator=g)
    z = torch.randn(1, 5, 5, cfg.c_z, generator=g)
    mask = torch.ones(1, 5, dtype=torch.bool)
    attn, trans = module.attention[0], module.transition[0]
    with torch.no_grad():
        out = module(a, s, z, mask)
        after_attn = a + attn(a, z, mask, s=s)
        sequential = after_attn + trans(after_attn, s)
        parallel = a + attn(a, z, mask, s=s) + trans(a, s)
    torch.testing.assert_close(out, sequential if order == "sequential" else parallel, rtol=0, atol=0)
    assert float((sequential - parallel).abs().max()) > 0.1  # the orders differ on this module


@pytest.mark.parametrize("order", ["sequential", "parallel"])
def test_atom_transformer_block_computes_its_order(order):
    cfg = tiny_config(transformer_block_order=order)
    module = AtomTransformer(cfg, n_blocks=1).eval()
    _randomise(module)
    g = torch.Generator().manual_seed(2)
    atom_mask = torch.ones(1, 20, dtype=torch.bool)
    windows = AtomWindows.build(atom_mask, cfg.atom_window_queries, cfg.atom_window_keys)
    q = torch.randn(1, 1, 20, cfg.c_atom, generator=g)
    c = torch.randn(1, 1, 20, cfg.c_atom, generator=g)
    p = torch.randn(1, windows.n_blocks, windows.n_queries, windows.n_keys, cfg.c_atompair, generator=g)
    attn, trans = module.attention[0], module.transition[0]
    with torch.no_grad():
        out = module(q, c, p, windows, atom_mask)
        after_attn = q + attn(q, p, atom_mask, s=c, windows=windows)
        sequential = after_attn + trans(after_attn, c)
        parallel = q + attn(q, p, atom_mask, s=c, windows=windows) + trans(q, c)
    torch.testing.assert_close(out, sequential if order == "sequential" else parallel, rtol=0, atol=0)
    assert float((sequential - parallel).abs().max()) > 0.1


def test_default_is_af3s_sequential_order_and_an_unknown_order_is_refused():
    assert ModelConfig().transformer_block_order == "sequential"
    with pytest.raises(ValueError, match="transformer_block_order"):
        ModelConfig(transformer_block_order="serial")
