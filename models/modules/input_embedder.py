"""Input embedder (AF3 Algorithm 2) and the trunk's initial s, z (Algorithm 1, lines 1-5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import ModelConfig
from models.features import N_RESTYPES
from models.modules.atom_attention import AtomAttentionEncoder
from models.modules.primitives import linear
from models.modules.relpos import RelativePositionEncoding


class InputEmbedder(nn.Module):
    """batch -> s_inputs (B, N, c_s_inputs) = [atom encoder (c_s_inputs - 65), restype (32), profile (32),
    deletion_mean (1)], then s_init (B, N, c_s) and z_init (B, N, N, c_z) with relative positions and bonds."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.atom_encoder = AtomAttentionEncoder(
            config, config.s_inputs_dim - 2 * N_RESTYPES - 1, with_trunk=False
        )
        self.proj_s = linear(config.s_inputs_dim, config.c_s)
        self.proj_z_row = linear(config.s_inputs_dim, config.c_z)
        self.proj_z_col = linear(config.s_inputs_dim, config.c_z)
        self.relpos = RelativePositionEncoding(config.c_z, config.max_relative_idx, config.max_relative_chain)
        self.proj_bonds = linear(1, config.c_z)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        a = self.atom_encoder(batch)[0][:, 0]
        s_inputs = torch.cat(
            [
                a,
                F.one_hot(batch["restype"], N_RESTYPES).to(a.dtype),
                batch["profile"].to(a.dtype),
                batch["deletion_mean"][..., None].to(a.dtype),
            ],
            dim=-1,
        )
        s_init = self.proj_s(s_inputs)
        z_init = self.proj_z_row(s_inputs)[:, :, None] + self.proj_z_col(s_inputs)[:, None]
        z_init = z_init + self.relpos(batch) + self.proj_bonds(batch["token_bonds"][..., None].to(a.dtype))
        return s_inputs, s_init, z_init
