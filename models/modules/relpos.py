"""Relative position encoding (AF3 Algorithm 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.modules.primitives import linear


class RelativePositionEncoding(nn.Module):
    """Token features (B, N) -> pair encoding (B, N, N, c_z).

    One-hot of clipped residue offset (2·r_max+2 classes, the last = different chain), token offset within the
    same residue (same), same-entity flag, and clipped chain offset within an entity (2·s_max+2).
    """

    def __init__(self, c_z: int, r_max: int, s_max: int) -> None:
        super().__init__()
        self.r_max, self.s_max = r_max, s_max
        self.proj = linear(2 * (2 * r_max + 2) + 1 + (2 * s_max + 2), c_z)

    @staticmethod
    def n_features(r_max: int, s_max: int) -> int:
        return 2 * (2 * r_max + 2) + 1 + (2 * s_max + 2)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        def pair(name: str) -> Tensor:
            x = batch[name]
            return x[:, :, None] - x[:, None, :]

        same_chain = pair("asym_id") == 0
        same_residue = (pair("residue_index") == 0) & same_chain
        same_entity = pair("entity_id") == 0
        r, s = self.r_max, self.s_max
        d_res = torch.where(same_chain, (pair("residue_index") + r).clamp(0, 2 * r), 2 * r + 1)
        d_tok = torch.where(same_residue, (pair("token_index") + r).clamp(0, 2 * r), 2 * r + 1)
        d_chain = torch.where(~same_chain, (pair("sym_id") + s).clamp(0, 2 * s), 2 * s + 1)
        feats = torch.cat(
            [
                F.one_hot(d_res, 2 * r + 2),
                F.one_hot(d_tok, 2 * r + 2),
                same_entity[..., None],
                F.one_hot(d_chain, 2 * s + 2),
            ],
            dim=-1,
        )
        return self.proj(feats.to(self.proj.weight.dtype))
