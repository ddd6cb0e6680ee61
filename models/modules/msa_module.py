"""MSA module (AF3 Algorithms 8-10): OuterProductMean, PairWeightedAveraging, MSA transition, pair stack."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import ModelConfig
from models.features import N_RESTYPES
from models.init import init_linear
from models.modules.pairformer import PairBlock
from models.modules.primitives import Transition, linear, shared_dropout
from models.policy import checkpointed

MSA_FEATURE_DIM = N_RESTYPES + 2  # one-hot residue, has_deletion, deletion_value


class OuterProductMean(nn.Module):
    """AF3 Algorithm 9: m (B, S, N, c_m), msa_mask (B, S, N) -> z update (B, N, N, c_z); mean over real rows.

    ``chunk_size`` rows i at a time: each chunk forms its (B, chunk, N, c, c) outer product, projects it to
    c_z and, under autograd, recomputes it in backward, so the (B, N, N, c, c) tensor never exists. The
    values are those of the unchunked sum (the reduction over S is the same per element).
    """

    def __init__(self, c_m: int, c_z: int, c_hidden: int, chunk_size: int | None = None) -> None:
        super().__init__()
        self.rows_per_chunk = chunk_size  # not `chunk_size`: predict sets that on the triangle ops
        self.norm = nn.LayerNorm(c_m)
        self.proj_ab = linear(c_m, 2 * c_hidden)
        self.proj_out = linear(c_hidden * c_hidden, c_z, bias=True, init="zeros")

    def forward(self, m: Tensor, msa_mask: Tensor) -> Tensor:
        mask = msa_mask[..., None].to(m.dtype)
        a, b = (self.proj_ab(self.norm(m)) * mask).chunk(2, dim=-1)
        count = torch.einsum("bsi,bsj->bij", mask[..., 0], mask[..., 0])[..., None]
        n, chunk = a.shape[2], self.rows_per_chunk
        if chunk is None or chunk >= n:
            return self._rows(a, b, count)
        parts = [
            checkpointed(self._rows, a[:, :, i : i + chunk], b, count[:, i : i + chunk], enabled=True)
            for i in range(0, n, chunk)
        ]
        return torch.cat(parts, dim=1)

    def _rows(self, a: Tensor, b: Tensor, count: Tensor) -> Tensor:
        """a (B, S, n_i, c), b (B, S, N, c), count (B, n_i, N, 1) -> (B, n_i, N, c_z)."""
        outer = torch.einsum("bsic,bsjd->bijcd", a, b).flatten(-2)
        return self.proj_out(outer / (count + 1e-3))


class PairWeightedAveraging(nn.Module):
    """AF3 Algorithm 10: m (B, S, N, c_m), z (B, N, N, c_z), token_mask (B, N) -> m update (B, S, N, c_m)."""

    def __init__(self, c_m: int, c_z: int, n_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        self.norm_m = nn.LayerNorm(c_m)
        self.proj_vg = linear(c_m, 2 * n_heads * head_dim)
        self.proj_vg.gate_from = n_heads * head_dim  # rows after the values are the gate's (AF3: g = σ(W m))
        init_linear(self.proj_vg)
        self.norm_z = nn.LayerNorm(c_z)
        self.proj_z = linear(c_z, n_heads)
        self.proj_out = linear(n_heads * head_dim, c_m, init="zeros")

    def forward(self, m: Tensor, z: Tensor, token_mask: Tensor) -> Tensor:
        b, s, n, _ = m.shape
        v, g = self.proj_vg(self.norm_m(m)).view(b, s, n, 2, self.n_heads, self.head_dim).unbind(dim=3)
        logits = self.proj_z(self.norm_z(z)).masked_fill(~token_mask[:, None, :, None], -1e4)
        w = torch.softmax(logits.float(), dim=2).to(v.dtype)  # (B, N_i, N_j, H) over j
        o = torch.einsum("bijh,bsjhd->bsihd", w, v)
        return self.proj_out((torch.sigmoid(g) * o).flatten(-2))


class MSABlock(nn.Module):
    """One MSA-module block; the last one skips the MSA updates, whose output nothing reads."""

    def __init__(self, config: ModelConfig, last: bool) -> None:
        super().__init__()
        self.dropout = config.msa_dropout
        self.opm = OuterProductMean(config.c_m, config.c_z, config.opm_hidden, config.policy.opm_chunk_size)
        self.pwa = (
            None
            if last
            else PairWeightedAveraging(config.c_m, config.c_z, config.pwa_heads, config.pwa_head_dim)
        )
        self.transition = None if last else Transition(config.c_m, config.transition_expansion)
        self.pair = PairBlock(config, config.c_z)

    def forward(self, m: Tensor, z: Tensor, msa_mask: Tensor, token_mask: Tensor) -> tuple[Tensor, Tensor]:
        z = z + self.opm(m, msa_mask)
        if self.pwa is not None:
            m = m + shared_dropout(self.pwa(m, z, token_mask), self.dropout, dim=1, training=self.training)
            m = m + self.transition(m)
        z = self.pair(z, token_mask[:, :, None] & token_mask[:, None, :])
        return m, z


class MSAModule(nn.Module):
    """AF3 Algorithm 8: embeds the MSA and updates z (B, N, N, c_z).

    batch["msa"] (B, S, N), "has_deletion"/"deletion_value" (B, S, N), "msa_mask" (B, S, N);
    s_inputs (B, N, c_s_inputs).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_msa = linear(MSA_FEATURE_DIM, config.c_m)
        self.embed_single = linear(config.s_inputs_dim, config.c_m)
        n = config.n_msa_blocks
        self.blocks = nn.ModuleList(MSABlock(config, last=i == n - 1) for i in range(n))
        self.checkpointing = config.policy.checkpoint_blocks

    def forward(self, batch: dict[str, Tensor], z: Tensor, s_inputs: Tensor) -> Tensor:
        msa = torch.cat(
            [
                F.one_hot(batch["msa"], N_RESTYPES).to(z.dtype),
                batch["has_deletion"][..., None].to(z.dtype),
                batch["deletion_value"][..., None].to(z.dtype),
            ],
            dim=-1,
        )
        m = self.embed_msa(msa) + self.embed_single(s_inputs)[:, None]
        msa_mask, token_mask = batch["msa_mask"], batch["token_mask"]
        for block in self.blocks:
            enabled = self.checkpointing and self.training
            m, z = checkpointed(block, m, z, msa_mask, token_mask, enabled=enabled)
        return z
