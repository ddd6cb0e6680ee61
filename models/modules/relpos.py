"""Relative position encoding (AF3 Algorithm 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.modules.primitives import linear


class RelativePositionEncoding(nn.Module):
    """Token features (B, N) -> pair encoding (B, N, N, c_z).

    AF3's encoding is a linear map of the concatenated one-hots of the clipped residue offset (2·r_max+2 classes,
    the last = different chain), the token offset within the same residue (same), the same-entity flag and the
    clipped chain offset (2·s_max+2). A linear map of a one-hot is a column of its weight, so it is computed as
    embedding lookups into ``proj.weight``'s column blocks, summed: the same values (and parameters) without the
    (B, N, N, 139) one-hot tensor (int64, then float: ~4.4x the (B, N, N, c_z) output at c_z 128).
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
        w = self.proj.weight  # (c_z, features): [residue offset | token offset | same entity | chain offset]
        a = 2 * r + 2
        out = F.embedding(d_res, w[:, :a].t())
        out += F.embedding(d_tok, w[:, a : 2 * a].t())
        out += same_entity[..., None].to(w.dtype) * w[:, 2 * a]
        out += F.embedding(d_chain, w[:, 2 * a + 1 :].t())
        return out
