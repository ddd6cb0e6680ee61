"""Diffusion module (AF3 Algorithms 20-23): conditioning, atom attention encoder, diffusion transformer,
atom attention decoder, with EDM preconditioning (docs/DESIGN.md §1.6). Always runs in fp32 (docs/DESIGN.md §2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from models.config import ModelConfig
from models.modules.atom_attention import AtomAttentionDecoder, AtomAttentionEncoder
from models.modules.attention_pair_bias import AttentionPairBias
from models.modules.primitives import ConditionedTransition, Transition, linear, residual_block, row_chunks
from models.modules.relpos import RelativePositionEncoding
from models.policy import checkpointed


class FourierEmbedding(nn.Module):
    """AF3 Algorithm 22: scalar noise level c_noise (B, S) -> cos(2π(t·w + b)) (B, S, n) with fixed random w, b.

    w ~ N(0, 1) and b ~ U(0, 1), as AF3's released code draws them (``fourier_embeddings``); the SI's Algorithm 22
    writes b ~ N(0, 1). cos(2π(·)) has period 1 in b, so only b mod 1 matters, and N(0, 1) mod 1 is uniform to
    within 1e-8 (its density is 1 + 2·Σ e^{-2π²k²}·cos(2πkx), first term 5e-9): the two draw phases from the same
    distribution; kept as the released code has it."""

    def __init__(self, n: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.randn(n, generator=g))
        self.register_buffer("b", torch.rand(n, generator=g))

    def forward(self, t: Tensor) -> Tensor:
        return torch.cos(2 * math.pi * (t[..., None] * self.w + self.b))


class DiffusionConditioning(nn.Module):
    """AF3 Algorithm 21. Pair: [z_trunk, relpos] -> z (B, N, N, c_z). Single: [s_trunk, s_inputs] + noise
    embedding -> s (B, S, N, c_s). The pair part does not depend on σ and is computed once per call.

    With ``policy.checkpoint_blocks`` a training call checkpoints the pair part's three stages (the projection of
    [z_trunk, relpos], each transition) like a stack's blocks: autograd then keeps their three (B, N, N, c_z)
    inputs, not every fp32 activation of the 2·c_z concatenation and the transitions' hidden layers (about 20 GB
    at c_z = 512 and 640 tokens, held through the whole diffusion module and the losses)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.sigma_data = config.sigma_data
        self.relpos = RelativePositionEncoding(config.c_z, config.max_relative_idx, config.max_relative_chain)
        self.norm_z = nn.LayerNorm(2 * config.c_z)
        self.proj_z = linear(2 * config.c_z, config.c_z)
        self.transitions_z = nn.ModuleList(Transition(config.c_z, 2) for _ in range(2))
        self.norm_s = nn.LayerNorm(config.c_s + config.s_inputs_dim)
        self.proj_s = linear(config.c_s + config.s_inputs_dim, config.c_s)
        self.fourier = FourierEmbedding(config.n_fourier)
        self.norm_noise = nn.LayerNorm(config.n_fourier)
        self.proj_noise = linear(config.n_fourier, config.c_s)
        self.transitions_s = nn.ModuleList(Transition(config.c_s, 2) for _ in range(2))
        self.chunk_size: int | None = None
        self.checkpointing = config.policy.checkpoint_blocks

    def pair(self, batch: dict[str, Tensor], z_trunk: Tensor) -> Tensor:
        if self.checkpointing and self.training:
            z = checkpointed(self._pair_input, batch, z_trunk, enabled=True)
            for transition in self.transitions_z:
                z = z + checkpointed(transition, z, enabled=True)
            return z
        rel = self.relpos(batch)
        rows = row_chunks(z_trunk.shape[1], self.chunk_size)
        if len(rows) == 1:
            return self._pair_rows(z_trunk, rel)
        # Inference (``chunk_size`` set by harness.predict.set_chunk_size): the (B, rows, N, 2·c_z)
        # concatenation, its LayerNorm and the transitions' hidden activations exist for one chunk at a time.
        out = z_trunk.new_empty(z_trunk.shape)
        for r in rows:
            out[:, r] = self._pair_rows(z_trunk[:, r], rel[:, r])
        return out

    def _pair_input(self, batch: dict[str, Tensor], z_trunk: Tensor) -> Tensor:
        return self._project(z_trunk, self.relpos(batch))

    def _project(self, z_trunk: Tensor, rel: Tensor) -> Tensor:
        return self.proj_z(self.norm_z(torch.cat([z_trunk, rel], dim=-1)))

    def _pair_rows(self, z_trunk: Tensor, rel: Tensor) -> Tensor:
        z = self._project(z_trunk, rel)
        for transition in self.transitions_z:
            z = z + transition(z)
        return z

    def single(self, s_trunk: Tensor, s_inputs: Tensor, sigma: Tensor) -> Tensor:
        s = self.proj_s(self.norm_s(torch.cat([s_trunk, s_inputs], dim=-1)))[:, None]  # (B, 1, N, c_s)
        noise = self.fourier(0.25 * torch.log(sigma / self.sigma_data))  # (B, S, n_fourier)
        s = s + self.proj_noise(self.norm_noise(noise))[:, :, None]
        for transition in self.transitions_s:
            s = s + transition(s)
        return s


class DiffusionTransformer(nn.Module):
    """AF3 Algorithm 23 at token level: a (B, S, N, c_token), s (B, S, N, c_s), z (B, N, N, c_z) -> a.

    Each block is ``residual_block`` in ``config.transformer_block_order`` (sequential by default, as AF3's code)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, n = config.c_token, config.diffusion_transition_expansion
        self.checkpointing = config.policy.checkpoint_blocks
        self.order = config.transformer_block_order
        self.attention = nn.ModuleList(
            AttentionPairBias(c, config.c_z, config.n_diffusion_heads, c_cond=config.c_s)
            for _ in range(config.n_diffusion_blocks)
        )
        self.transition = nn.ModuleList(
            ConditionedTransition(c, config.c_s, n) for _ in range(config.n_diffusion_blocks)
        )

    def pair_biases(self, z: Tensor) -> list[Tensor]:
        """Every block's attention pair bias (B, H, N, N) from z (B, N, N, c_z): computed once and passed to
        ``forward`` wherever z is fixed (all steps of a sampler run), instead of in every block at every call."""
        return [attention.pair_bias(z) for attention in self.attention]

    def forward(self, a: Tensor, s: Tensor, z: Tensor, token_mask: Tensor,
                biases: list[Tensor] | None = None) -> Tensor:
        biases = biases if biases is not None else [None] * len(self.attention)
        for attention, transition, bias in zip(self.attention, self.transition, biases, strict=True):
            a = checkpointed(self._block, attention, transition, a, s, z, token_mask, self.order, bias,
                             enabled=self.checkpointing and self.training)
        return a

    @staticmethod
    def _block(attention: nn.Module, transition: nn.Module, a: Tensor, s: Tensor, z: Tensor,
               token_mask: Tensor, order: str, bias: Tensor | None = None) -> Tensor:
        return residual_block(a, lambda x: attention(x, z, token_mask, s=s, bias=bias), lambda x: transition(x, s),
                              order)


class DiffusionModule(nn.Module):
    """AF3 Algorithm 20: denoise x_noisy (B, S, A, 3) Å at noise levels sigma (B, S) Å -> x_denoised (B, S, A, 3).

    EDM preconditioning: D(x; σ) = c_skip·x + c_out·F(c_in·x; c_noise), σ_d = config.sigma_data.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.sigma_data = config.sigma_data
        chunk = config.policy.diffusion_chunk_size
        # "auto" is resolved per training stage by the recipe (harness.memory.plan) before the model is built;
        # a model built from the config alone (prediction) denoises all its samples at once.
        self.copies_per_chunk = chunk if isinstance(chunk, int) else None
        self.conditioning = DiffusionConditioning(config)
        self.atom_encoder = AtomAttentionEncoder(config, config.c_token, with_trunk=True)
        self.norm_s = nn.LayerNorm(config.c_s)
        self.proj_s = linear(config.c_s, config.c_token)
        self.transformer = DiffusionTransformer(config)
        self.norm_a = nn.LayerNorm(config.c_token)
        self.atom_decoder = AtomAttentionDecoder(config)

    def chunked(
        self, x_noisy: Tensor, sigma: Tensor, batch: dict[str, Tensor], s_inputs: Tensor, s_trunk: Tensor,
        z_trunk: Tensor, z_cond: Tensor | None = None, biases: list[Tensor] | None = None,
    ) -> Tensor:
        """``forward`` over the S copies ``policy.diffusion_chunk_size`` at a time (same values): the pair
        conditioning is computed once, and under autograd each chunk is recomputed in backward, so only one
        chunk's activations are alive at a time."""
        n_copies, chunk = x_noisy.shape[1], self.copies_per_chunk
        if chunk is None or chunk >= n_copies:
            return self(x_noisy, sigma, batch, s_inputs, s_trunk, z_trunk, z_cond=z_cond, biases=biases)
        if z_cond is None:
            with torch.autocast(x_noisy.device.type, enabled=False):
                z_cond = self.conditioning.pair(batch, z_trunk.float())

        def run(x: Tensor, sig: Tensor) -> Tensor:
            return self(x, sig, batch, s_inputs, s_trunk, z_trunk, z_cond=z_cond, biases=biases)

        parts = [checkpointed(run, x_noisy[:, i : i + chunk], sigma[:, i : i + chunk], enabled=True)
                 for i in range(0, n_copies, chunk)]
        return torch.cat(parts, dim=1)

    def forward(
        self,
        x_noisy: Tensor,
        sigma: Tensor,
        batch: dict[str, Tensor],
        s_inputs: Tensor,
        s_trunk: Tensor,
        z_trunk: Tensor,
        z_cond: Tensor | None = None,
        biases: list[Tensor] | None = None,
    ) -> Tensor:
        """``z_cond``: the σ-independent pair conditioning, and ``biases`` its per-block attention pair biases
        (``transformer.pair_biases(z_cond)``): pass them to reuse them across sampler steps."""
        with torch.autocast(x_noisy.device.type, enabled=False):
            s_inputs, s_trunk, z_trunk = s_inputs.float(), s_trunk.float(), z_trunk.float()
            x_noisy, sigma = x_noisy.float(), sigma.float()
            if z_cond is None:
                z_cond = self.conditioning.pair(batch, z_trunk)
            s = self.conditioning.single(s_trunk, s_inputs, sigma)
            sd2, sig = self.sigma_data**2, sigma[..., None, None]
            r = x_noisy / torch.sqrt(sig**2 + sd2)
            a, q_skip, c_skip, p_skip, windows = self.atom_encoder(batch, r, s_trunk, z_cond)
            a = a + self.proj_s(self.norm_s(s))
            a = self.transformer(a, s, z_cond, batch["token_mask"], biases)
            r_update = self.atom_decoder(self.norm_a(a), q_skip, c_skip, p_skip, windows, batch)
            c_skip_w = sd2 / (sig**2 + sd2)
            c_out = sig * self.sigma_data / torch.sqrt(sig**2 + sd2)
            return c_skip_w * x_noisy + c_out * r_update
