"""Shapes, masks, gradients, recycling, determinism and sampling of the full model on tiny configs."""

import pytest
import torch

from models.losses import compute_losses
from models.model import SeedFold
from tests.models.conftest import collate, random_example, tiny_config


def _perturb(model: torch.nn.Module, seed: int = 0) -> None:
    """Give zero-initialised output layers non-zero weights so gradients reach every upstream parameter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_forward_shapes(tiny_batch):
    model = SeedFold(tiny_config())
    out = model(tiny_batch, n_cycles=1, diffusion_batch=3, generator=torch.Generator().manual_seed(0))
    b, n, a = 2, 12, 36
    assert out["s"].shape == (b, n, 32) and out["z"].shape == (b, n, n, 16)
    assert out["distogram_logits"].shape == (b, n, n, 64)
    assert out["x_denoised"].shape == out["x_gt_aug"].shape == (b, 3, a, 3)
    assert out["sigma"].shape == (b, 3) and bool((out["sigma"] > 0).all())
    assert out["x_denoised"].dtype == torch.float32


@pytest.mark.parametrize("variant", ["vanilla", "additive", "gated"])
def test_padding_tokens_change_nothing(variant):
    torch.manual_seed(0)
    model = SeedFold(tiny_config(triangle_attention=variant, kernel_impl="torch")).eval()
    _perturb(model)
    small = random_example(10, seed=3)
    alone = collate([small])
    padded = collate([small, random_example(14, seed=4)])
    padded = {k: v[:1] for k, v in padded.items()}  # example 0 padded to 14 tokens, 42 atoms, 3 MSA rows
    with torch.no_grad():
        t1, t2 = model.trunk(alone, n_cycles=2), model.trunk(padded, n_cycles=2)
        torch.testing.assert_close(t2["s"][:, :10], t1["s"], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(t2["z"][:, :10, :10], t1["z"], rtol=1e-4, atol=1e-4)
        x = torch.randn(1, 2, 30, 3) * 10
        sigma = torch.tensor([[3.0, 20.0]])
        x_pad = torch.cat([x, torch.zeros(1, 2, 12, 3)], dim=2)
        d1 = model.diffusion_module(x, sigma, alone, t1["s_inputs"], t1["s"], t1["z"])
        d2 = model.diffusion_module(x_pad, sigma, padded, t2["s_inputs"], t2["s"], t2["z"])
        torch.testing.assert_close(d2[:, :, :30], d1, rtol=1e-4, atol=1e-4)


def test_gradients_reach_every_parameter(tiny_batch):
    model = SeedFold(tiny_config(use_templates=False))
    _perturb(model)
    out = model(tiny_batch, n_cycles=2, diffusion_batch=2, generator=torch.Generator().manual_seed(0),
                with_confidence=True)  # fmt: skip
    losses = compute_losses(out, tiny_batch, confidence=True, weights={"confidence": 1.0})
    losses["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert missing == []


def test_recycling_backpropagates_only_through_last_cycle(tiny_batch):
    model = SeedFold(tiny_config())
    grad_modes = []
    model.pairformer.register_forward_hook(lambda *_: grad_modes.append(torch.is_grad_enabled()))
    out = model.trunk(tiny_batch, n_cycles=3)
    assert grad_modes == [False, False, True]
    assert out["z"].requires_grad


def test_determinism_with_a_seed(tiny_batch):
    def run():
        torch.manual_seed(1)
        model = SeedFold(tiny_config())
        out = model(tiny_batch, n_cycles=2, diffusion_batch=2, generator=torch.Generator().manual_seed(5))
        return out["x_denoised"], compute_losses(out, tiny_batch)["loss"]

    (x1, l1), (x2, l2) = run(), run()
    assert torch.equal(x1, x2) and torch.equal(l1, l2)


def test_sampler_gives_finite_coordinates_and_confidences(tiny_batch):
    model = SeedFold(tiny_config()).eval()
    out = model.sample(
        tiny_batch, n_cycles=1, n_samples=2, n_steps=10, generator=torch.Generator().manual_seed(0)
    )
    assert out["coords"].shape == (2, 2, 36, 3) and bool(out["coords"].isfinite().all())
    # padded atoms of example 1 (30 real atoms) stay at the origin
    assert bool((out["coords"][1, :, 30:] == 0).all())
    assert bool(((out["plddt"] >= 0) & (out["plddt"] <= 100)).all())
    assert out["pae"].shape == (2, 2, 12, 12) and bool((out["pae"] >= 0).all())
    assert bool(((out["ptm"] >= 0) & (out["ptm"] <= 1)).all()) and out["has_clash"].shape == (2, 2)


def test_full_forward_backward_of_a_tiny_preset_trains():
    from models.presets import get_preset, miniaturize

    config = miniaturize(get_preset("base"), pairformer_blocks=1)
    torch.manual_seed(0)
    model = SeedFold(config)
    batch = collate([random_example(16, seed=2)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(6):
        out = model(batch, n_cycles=1, diffusion_batch=4, generator=torch.Generator().manual_seed(step % 2))
        loss = compute_losses(out, batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-2] < losses[0] and losses[-1] < losses[1]  # same noise seeds, fitted a little


def test_bf16_trunk_keeps_diffusion_fp32(tiny_batch):
    model = SeedFold(tiny_config(trunk_bf16=True))
    out = model(tiny_batch, n_cycles=1, diffusion_batch=2, generator=torch.Generator().manual_seed(0))
    assert out["z"].dtype == torch.float32 and out["x_denoised"].dtype == torch.float32
    assert bool(out["x_denoised"].isfinite().all())


def test_chunked_triangle_attention_matches_unchunked(tiny_batch):
    torch.manual_seed(0)
    full = SeedFold(tiny_config(kernel_impl="torch")).eval()
    _perturb(full)
    chunked = SeedFold(tiny_config(kernel_impl="torch", chunk_size=5)).eval()
    chunked.load_state_dict(full.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            chunked.trunk(tiny_batch, n_cycles=1)["z"],
            full.trunk(tiny_batch, n_cycles=1)["z"],
            rtol=1e-5,
            atol=1e-5,
        )


def test_the_sampler_constants_of_the_config_are_the_ones_in_effect(tiny_batch):
    """model.sampler reaches AF3 Algorithm 18: AF3's constants by default, another η gives another sample."""
    from models.config import SamplerConfig
    from models.sampling import sample_diffusion

    assert SamplerConfig().model_dump() == {"gamma_0": 0.8, "gamma_min": 1.0, "noise_scale": 1.003, "step_scale": 1.5}

    def coords(**sampler):
        torch.manual_seed(0)
        model = SeedFold(tiny_config(sampler=sampler)).eval()
        return model.sample(tiny_batch, n_cycles=1, n_samples=1, n_steps=10,
                            generator=torch.Generator().manual_seed(0))["coords"]

    default, eta1 = coords(), coords(step_scale=1.0)
    assert not torch.allclose(default, eta1)
    torch.manual_seed(0)
    model = SeedFold(tiny_config()).eval()
    trunk = model.trunk(tiny_batch, n_cycles=1)

    def denoise(x, sigma):
        return model.diffusion_module.chunked(x, sigma, tiny_batch, trunk["s_inputs"], trunk["s"], trunk["z"])

    with torch.no_grad():
        by_hand = sample_diffusion(denoise, tiny_batch["atom_mask"], n_samples=1, n_steps=10, sigma_data=16.0,
                                   generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(default, by_hand)
