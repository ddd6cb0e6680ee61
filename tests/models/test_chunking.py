"""Inference chunking of the pair operations changes no value (oracle: the same module unchunked) and bounds
what one call holds (oracle: the allocator's own count of what a call allocates)."""

import pytest
import torch

from models.model import SeedFold
from models.modules.primitives import Transition, row_chunks
from models.modules.triangle_multiplication import TriangleMultiplication
from tests.models.conftest import tiny_config


def _randomised(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero weights everywhere (AF3 init zeroes the final projections, which would hide any error)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module.double().eval()


def _pair(n: int, c: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2, n, n, c, generator=g, dtype=torch.float64)
    mask = torch.ones(2, n, n, dtype=torch.bool)
    mask[1, :, n - 3 :] = False
    mask[1, n - 3 :, :] = False
    return z, mask


def test_row_chunks_cover_every_row_once():
    assert row_chunks(10, None) == [slice(0, 10)]
    assert row_chunks(10, 16) == [slice(0, 10)]
    covered = [i for s in row_chunks(10, 3) for i in range(10)[s]]
    assert covered == list(range(10)) and len(row_chunks(10, 3)) == 4


@pytest.mark.parametrize("outgoing", [True, False])
@pytest.mark.parametrize("chunk", [1, 4, 7])
def test_chunked_triangle_multiplication_equals_unchunked(outgoing, chunk):
    module = _randomised(TriangleMultiplication(12, 10, outgoing=outgoing))
    z, mask = _pair(11, 12)
    with torch.no_grad():
        full = module(z, mask)
        module.chunk_size = chunk
        chunked = module(z, mask)
    torch.testing.assert_close(chunked, full, rtol=1e-12, atol=1e-12)


def test_triangle_multiplication_keeps_the_training_path_under_autograd():
    module = _randomised(TriangleMultiplication(8, 8, outgoing=True))
    module.chunk_size = 3
    z, mask = _pair(9, 8)
    z.requires_grad_(True)
    module(z, mask).sum().backward()  # the chunked path is no_grad; this one must carry gradients
    assert z.grad is not None and bool(z.grad.abs().sum() > 0)


@pytest.mark.parametrize("shape", [(2, 9, 9, 12), (2, 9, 12), (2, 3, 9, 12)])
def test_chunked_transition_equals_unchunked(shape):
    module = _randomised(Transition(12, 4))
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    full = module(x)
    module.chunk_size = 2
    torch.testing.assert_close(module(x), full, rtol=1e-12, atol=1e-12)


def test_chunked_model_gives_the_same_trunk_and_denoised_atoms(tiny_batch):
    """Everything set_chunk_size reaches (triangle ops, pair transitions, diffusion pair conditioning)."""
    model = _randomised(SeedFold(tiny_config(kernel_impl="torch")), seed=3).float()
    batch = tiny_batch
    sigma = torch.full((2, 2), 3.0)

    def run():
        with torch.no_grad():
            t = model.trunk(batch, n_cycles=1)
            x = batch["gt_coords"].float()[:, None].expand(-1, 2, -1, -1)
            den = model.diffusion_module(x, sigma, batch, t["s_inputs"], t["s"], t["z"])
        return t["z"], den

    z_full, den_full = run()
    model.set_chunk_size(5)
    reached = {type(m).__name__ for m in model.modules() if getattr(m, "chunk_size", None) == 5}
    assert {"TriangleAttentionStartingNode", "TriangleMultiplicationOutgoing", "Transition",
            "DiffusionConditioning"} <= reached
    z_chunked, den_chunked = run()
    torch.testing.assert_close(z_chunked, z_full, rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(den_chunked, den_full, rtol=2e-5, atol=2e-5)


def test_config_chunk_size_reaches_every_chunked_module():
    model = SeedFold(tiny_config(chunk_size=4))
    sizes = {type(m).__name__: m.chunk_size for m in model.modules() if hasattr(m, "chunk_size")}
    assert set(sizes.values()) == {4}, sizes


def test_pair_biases_computed_once_give_the_same_denoised_atoms_and_samples(tiny_batch, monkeypatch):
    """The diffusion transformer's per-block pair biases, computed once from the pair conditioning and passed in
    (as the sampler does for all its steps), change no value; the sampler computes them once per call."""
    model = _randomised(SeedFold(tiny_config(kernel_impl="torch", n_diffusion_blocks=2)), seed=4).float()
    batch, sigma = tiny_batch, torch.full((2, 2), 3.0)
    with torch.no_grad():
        t = model.trunk(batch, n_cycles=1)
        x = batch["gt_coords"].float()[:, None].expand(-1, 2, -1, -1)
        z_cond = model.diffusion_module.conditioning.pair(batch, t["z"])
        biases = model.diffusion_module.transformer.pair_biases(z_cond)
        assert [tuple(b.shape) for b in biases] == [(2, 4, 12, 12)] * 2  # (B, heads, N, N) per block
        plain = model.diffusion_module(x, sigma, batch, t["s_inputs"], t["s"], t["z"])
        cached = model.diffusion_module(x, sigma, batch, t["s_inputs"], t["s"], t["z"], z_cond=z_cond, biases=biases)
    torch.testing.assert_close(cached, plain, rtol=1e-6, atol=1e-6)
    calls = []
    original = type(model.diffusion_module.transformer).pair_biases

    def counted(self, z):
        calls.append(1)
        return original(self, z)

    monkeypatch.setattr(type(model.diffusion_module.transformer), "pair_biases", counted)
    model.sample(batch, n_cycles=1, n_samples=2, n_steps=5, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 1  # once for 5 sampler steps x 2 blocks
