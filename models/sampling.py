"""Noise levels, augmentation and the AF3 sampler (AF3 Algorithms 18, 19; docs/DESIGN.md §1.6). All fp32, in Å."""

from __future__ import annotations

from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor


class SamplerConfig(BaseModel):
    """AF3 Algorithm 18's constants: γ₀, γ_min, noise scale λ, step scale η. Used by every sampled structure:
    validation lDDT, the confidence head's mini-rollout and ``harness predict``.

    AF3's η = 1.5 (a step 1.5x the probability-flow step) sharpens samples of a well-trained denoiser; a CPU
    miniature's denoiser pulls towards a mean structure, and there η = 1.5 degrades its own x₀ prediction along
    the trajectory (BENCHMARKS.md, "sampler": final lDDT 0.19 at η 1.5 vs 0.28 at η 1.0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gamma_0: float = Field(0.8, ge=0.0, description="churn: noise added per step is γ₀ while σ > gamma_min")
    gamma_min: float = Field(1.0, ge=0.0, description="σ (Å) below which no churn is added")
    noise_scale: float = Field(1.003, gt=0.0, description="λ, scale of the added noise")
    step_scale: float = Field(1.5, gt=0.0, description="η, multiplier of the denoising step (AF3: 1.5)")


def random_rotations(shape: tuple[int, ...], *, generator=None, device=None) -> Tensor:
    """Uniform random rotation matrices (*shape, 3, 3) from normalised Gaussian quaternions."""
    q = torch.randn(*shape, 4, generator=generator, device=device)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).view(*shape, 3, 3)


def centre(x: Tensor, mask: Tensor) -> Tensor:
    """Subtract the centroid of the masked atoms: x (B, S, A, 3), mask (B, A) bool."""
    w = mask[:, None, :, None].to(x.dtype)
    return (x - (x * w).sum(2, keepdim=True) / w.sum(2, keepdim=True).clamp(min=1.0)) * w


def centre_random_augmentation(x: Tensor, mask: Tensor, *, s_trans: float = 1.0, generator=None) -> Tensor:
    """AF3 Algorithm 19: centre, rotate uniformly, translate by N(0, s_trans²) Å per copy. x (B, S, A, 3)."""
    x = centre(x, mask)
    b, s = x.shape[:2]
    rot = random_rotations((b, s), generator=generator, device=x.device)
    trans = s_trans * torch.randn(b, s, 1, 3, generator=generator, device=x.device)
    return (torch.einsum("bsij,bsaj->bsai", rot, x) + trans) * mask[:, None, :, None].to(x.dtype)


def training_noise(shape: tuple[int, ...], sigma_data: float, *, generator=None, device=None) -> Tensor:
    """σ = σ_data · exp(-1.2 + 1.5·N(0, 1)) Å (AF3 §3.7.1)."""
    return sigma_data * torch.exp(-1.2 + 1.5 * torch.randn(shape, generator=generator, device=device))


def noise_schedule(
    n_steps: int, sigma_data: float, s_max: float = 160.0, s_min: float = 4e-4, rho: float = 7.0, device=None
) -> Tensor:
    """σ(t) = σ_d·(s_max^{1/ρ} + t(s_min^{1/ρ} − s_max^{1/ρ}))^ρ at t = 0, 1/n, ..., 1: (n_steps + 1,) Å."""
    t = torch.linspace(0, 1, n_steps + 1, device=device)
    return sigma_data * (s_max ** (1 / rho) + t * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho


def noise_levels(n_steps: int, sigma_data: float) -> list[float]:
    """:func:`noise_schedule`'s values as numbers (the sampler's loop reads them as such)."""
    return noise_schedule(n_steps, sigma_data).tolist()


def sample_diffusion(
    denoise: Callable[[Tensor, Tensor], Tensor],
    atom_mask: Tensor,
    *,
    n_samples: int,
    n_steps: int,
    sigma_data: float,
    sampler: SamplerConfig = SamplerConfig(),  # noqa: B008 (frozen, so one shared default is safe)
    generator=None,
) -> Tensor:
    """AF3 Algorithm 18 with ``sampler``'s constants. ``denoise(x_noisy (B, S, A, 3), sigma (B, S)) ->
    x_denoised``; returns (B, S, A, 3) Å."""
    gamma_0, gamma_min = sampler.gamma_0, sampler.gamma_min
    noise_scale, step_scale = sampler.noise_scale, sampler.step_scale
    b, a = atom_mask.shape
    device = atom_mask.device
    levels = noise_levels(n_steps, sigma_data)
    w = atom_mask[:, None, :, None].float()
    x = levels[0] * torch.randn(b, n_samples, a, 3, generator=generator, device=device) * w
    for c_prev, c_now in zip(levels[:-1], levels[1:], strict=True):
        x = centre_random_augmentation(x, atom_mask, generator=generator)
        gamma = gamma_0 if c_now > gamma_min else 0.0
        t_hat = c_prev * (gamma + 1)
        xi = (
            noise_scale
            * (t_hat**2 - c_prev**2) ** 0.5
            * torch.randn(x.shape, generator=generator, device=device)
        )
        x_noisy = x + xi * w
        x_denoised = denoise(x_noisy, torch.full((b, n_samples), t_hat, device=device))
        delta = (x_noisy - x_denoised) / t_hat
        x = (x_noisy + step_scale * (c_now - t_hat) * delta) * w
    return x
