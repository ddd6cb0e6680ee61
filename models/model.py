"""SeedFold: AF3 Algorithm 1 with width, depth and the triangle-attention variant as configuration."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.confidence_metrics import summarize_confidence
from models.config import ModelConfig
from models.init import apply_init
from models.modules.confidence import ConfidenceHead
from models.modules.diffusion import DiffusionModule
from models.modules.heads import DistogramHead
from models.modules.input_embedder import InputEmbedder
from models.modules.msa_module import MSAModule
from models.modules.pairformer import Pairformer
from models.modules.primitives import linear
from models.modules.template import TemplateEmbedder
from models.sampling import centre_random_augmentation, sample_diffusion, training_noise


class SeedFold(nn.Module):
    """The full model. ``batch`` is the feature dict of ``models.features.FEATURES`` with a leading batch dim
    B, tokens padded to N, atoms to A, MSA rows to S."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c_s, c_z = config.c_s, config.c_z
        self.input_embedder = InputEmbedder(config)
        self.norm_s_prev, self.proj_s_prev = nn.LayerNorm(c_s), linear(c_s, c_s)
        self.norm_z_prev, self.proj_z_prev = nn.LayerNorm(c_z), linear(c_z, c_z)
        self.template_embedder = TemplateEmbedder(config) if config.use_templates else None
        self.msa_module = MSAModule(config) if config.n_msa_blocks > 0 else None
        self.pairformer = Pairformer(config, config.n_pairformer_blocks, trunk=True)
        self.distogram_head = DistogramHead(c_z, config.n_distogram_bins)
        self.diffusion_module = DiffusionModule(config)
        self.confidence_head = ConfidenceHead(config) if config.use_confidence_head else None
        apply_init(self, config.init, zero_conditioning=config.zero_init_conditioning)
        self.chunk_size: int | None = None
        self.set_chunk_size(config.chunk_size)

    def set_chunk_size(self, chunk_size: int | None) -> None:
        """Rows (and hidden channels) per chunk of every pair operation that chunks — triangle attention, the
        triangle multiplications, the pair transitions, the diffusion pair conditioning — or None for none.
        Chunking changes no value, only the memory an inference pass holds (BENCHMARKS.md, "predict memory");
        the triangle multiplication chunks without autograd only. With chunking on, :meth:`sample` also runs
        the confidence head one sample at a time and keeps its summaries, not the (B, S, N, N, bins) logits."""
        for module in self.modules():
            if hasattr(module, "chunk_size") and not isinstance(module, nn.ModuleList):
                module.chunk_size = chunk_size

    def trunk(self, batch: dict[str, Tensor], *, n_cycles: int) -> dict[str, Tensor]:
        """Recycled trunk: s_inputs (B, N, c_s_inputs), s (B, N, c_s), z (B, N, N, c_z), all fp32.

        Every cycle but the last runs without autograd, so gradients flow only through the last one.
        """
        if n_cycles < 1:
            raise ValueError(f"n_cycles={n_cycles}; expected >= 1")
        s_inputs, s_init, z_init = self.input_embedder(batch)
        token_mask = batch["token_mask"]
        s, z = torch.zeros_like(s_init), torch.zeros_like(z_init)
        for cycle in range(n_cycles):
            last = cycle == n_cycles - 1
            with torch.set_grad_enabled(last and torch.is_grad_enabled()):
                s, z = self._cycle(batch, s_inputs, s_init, z_init, s.detach(), z.detach(), token_mask)
        return {"s_inputs": s_inputs, "s": s, "z": z}

    def _cycle(self, batch, s_inputs, s_init, z_init, s_prev, z_prev, token_mask) -> tuple[Tensor, Tensor]:
        z = z_init + self.proj_z_prev(self.norm_z_prev(z_prev))
        s = s_init + self.proj_s_prev(self.norm_s_prev(s_prev))
        policy = self.config.policy
        with policy.autocast(z.device, policy.trunk_precision):
            if self.template_embedder is not None:
                z = z + self.template_embedder(batch, z)
            if self.msa_module is not None:
                z = self.msa_module(batch, z, s_inputs)
            s, z = self.pairformer(s, z, token_mask)
        return s.float(), z.float()

    def forward(
        self,
        batch: dict[str, Tensor],
        *,
        n_cycles: int,
        diffusion_batch: int,
        generator: torch.Generator | None = None,
        with_confidence: bool = False,
    ) -> dict[str, Tensor]:
        """Training pass. Returns s_inputs, s, z, distogram_logits (B, N, N, bins), sigma (B, D) Å,
        x_gt_aug (B, D, A, 3) and x_denoised (B, D, A, 3) Å for D = ``diffusion_batch`` augmented, noised
        copies of the truth; with ``with_confidence`` also the detached mini-rollout and confidence logits."""
        out = self.trunk(batch, n_cycles=n_cycles)
        out["distogram_logits"] = self.distogram_head(out["z"]).float()
        mask = batch["gt_atom_mask"] & batch["atom_mask"]
        x_gt = batch["gt_coords"].float()[:, None].expand(-1, diffusion_batch, -1, -1)
        device = x_gt.device
        x_gt_aug = centre_random_augmentation(x_gt, mask, generator=generator)
        b = x_gt.shape[0]
        sigma = training_noise(
            (b, diffusion_batch), self.config.sigma_data, generator=generator, device=device
        )
        noise = torch.randn(x_gt_aug.shape, generator=generator, device=device) * sigma[..., None, None]
        x_noisy = x_gt_aug + noise * batch["atom_mask"][:, None, :, None]
        out["x_denoised"] = self.diffusion_module.chunked(
            x_noisy, sigma, batch, out["s_inputs"], out["s"], out["z"]
        )
        out["x_gt_aug"], out["sigma"] = x_gt_aug, sigma
        if with_confidence:
            out.update(self.confidence_rollout(batch, out, generator=generator))
        return out

    def confidence_rollout(
        self, batch: dict[str, Tensor], trunk: dict[str, Tensor], *, n_steps: int = 20, generator=None
    ) -> dict[str, Tensor]:
        """The confidence head's training input (AF3 §4.3.5): a detached 20-step, 1-sample rollout from the
        trunk, then the confidence head on detached trunk activations. Returns x_rollout (B, 1, A, 3) and the
        four logits of ``ConfidenceHead``."""
        if self.confidence_head is None:
            raise ValueError("confidence_rollout needs config.use_confidence_head=True")
        s_inputs, s, z = (trunk[k].detach() for k in ("s_inputs", "s", "z"))
        with torch.no_grad():
            x = self._sample_coords(batch, s_inputs, s, z, n_samples=1, n_steps=n_steps, generator=generator)
        logits = self.confidence_head(batch, s_inputs, s, z, x)
        return {"x_rollout": x, **logits}

    def _sample_coords(self, batch, s_inputs, s, z, *, n_samples, n_steps, generator) -> Tensor:
        z_cond = self.diffusion_module.conditioning.pair(batch, z.float())
        # σ-independent: the pair conditioning and every transformer block's pair bias, once for all steps.
        biases = self.diffusion_module.transformer.pair_biases(z_cond)

        def denoise(x_noisy: Tensor, sigma: Tensor) -> Tensor:
            return self.diffusion_module.chunked(x_noisy, sigma, batch, s_inputs, s, z, z_cond=z_cond, biases=biases)

        return sample_diffusion(
            denoise,
            batch["atom_mask"],
            n_samples=n_samples,
            n_steps=n_steps,
            sigma_data=self.config.sigma_data,
            sampler=self.config.sampler,
            generator=generator,
        )

    @torch.no_grad()
    def sample(
        self,
        batch: dict[str, Tensor],
        *,
        n_cycles: int,
        n_samples: int,
        n_steps: int = 200,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Inference: coords (B, n_samples, A, 3) Å and, with the confidence head, plddt (B, n_samples, A)
        in [0, 100], pae / pde (B, n_samples, N, N) Å, ptm, iptm and has_clash (B, n_samples)."""
        trunk = self.trunk(batch, n_cycles=n_cycles)
        s_inputs, s, z = trunk["s_inputs"], trunk["s"], trunk["z"]
        coords = self._sample_coords(
            batch, s_inputs, s, z, n_samples=n_samples, n_steps=n_steps, generator=generator
        )
        out = {"coords": coords, "distogram_logits": self.distogram_head(z)}
        if self.confidence_head is None:
            return out
        if self.chunk_size is None:
            logits = self.confidence_head(batch, s_inputs, s, z, coords)
            out.update(summarize_confidence(logits, batch, self.config, coords))
            return out
        # Chunked inference: the head's (B, S, N, N, c_z) pair stack and its pair logits, one sample at a time.
        parts = []
        for k in range(coords.shape[1]):
            one = coords[:, k : k + 1]
            summary = summarize_confidence(self.confidence_head(batch, s_inputs, s, z, one), batch, self.config, one)
            parts.append({key: v for key, v in summary.items() if key not in ("pae_logits", "pde_logits")})
        out.update({key: parts[0][key] if key == "multichain" else torch.cat([p[key] for p in parts], dim=1)
                    for key in parts[0]})
        return out
