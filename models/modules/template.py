"""Template embedder (AF3 Algorithm 16, simplified features). Off by default (config.use_templates).

Optional batch features (T templates): ``template_restype`` (B, T, N) long, ``template_pseudo_beta``
(B, T, N, 3) Å, ``template_pseudo_beta_mask`` (B, T, N) bool. Template pair features are the pseudo-β
distogram (AF3: 38 bins of 1.25 Å between 3.25 and 50.75 Å and one for larger distances; the same interior
edges 4.5 ... 50.75 Å as the confidence head's distance bins), the pair mask and both residue types; AF3's
backbone unit vectors are omitted because the feature contract carries no template frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import ModelConfig
from models.features import N_RESTYPES
from models.modules.heads import confidence_distance_edges
from models.modules.pairformer import PairStack
from models.modules.primitives import linear

N_TEMPLATE_DIST_BINS = 39
TEMPLATE_FEATURE_DIM = N_TEMPLATE_DIST_BINS + 1 + 2 * N_RESTYPES
TEMPLATE_FEATURES = ("template_restype", "template_pseudo_beta", "template_pseudo_beta_mask")


class TemplateEmbedder(nn.Module):
    """z (B, N, N, c_z) and the template features -> z update (B, N, N, c_z), averaged over real templates."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c_t = config.c_template
        self.norm_z = nn.LayerNorm(config.c_z)
        self.proj_z = linear(config.c_z, c_t)
        self.proj_feat = linear(TEMPLATE_FEATURE_DIM, c_t)
        self.stack = PairStack(config, config.n_template_blocks, c_t)
        self.norm_out = nn.LayerNorm(c_t)
        self.proj_out = linear(c_t, config.c_z, init="zeros")  # adds into z

    def forward(self, batch: dict[str, Tensor], z: Tensor) -> Tensor:
        missing = [name for name in TEMPLATE_FEATURES if name not in batch]
        if missing:
            raise KeyError(f"use_templates=True but the batch lacks template features {missing}")
        pb, pb_mask = batch["template_pseudo_beta"].float(), batch["template_pseudo_beta_mask"]
        restype = F.one_hot(batch["template_restype"], N_RESTYPES).to(z.dtype)
        pair_mask = pb_mask[..., :, None] & pb_mask[..., None, :]  # (B, T, N, N)
        dist = torch.cdist(pb, pb)
        edges = confidence_distance_edges(device=z.device)  # 38 interior edges: 39 bins of 1.25 Å
        n_t, n = pb.shape[1], pb.shape[2]
        feats = torch.cat(
            [
                F.one_hot(torch.bucketize(dist, edges), N_TEMPLATE_DIST_BINS).to(z.dtype)
                * pair_mask[..., None],
                pair_mask[..., None].to(z.dtype),
                restype[:, :, :, None].expand(-1, -1, -1, n, -1),
                restype[:, :, None, :].expand(-1, -1, n, -1, -1),
            ],
            dim=-1,
        )
        token_mask = batch["token_mask"]
        token_pair = (token_mask[:, :, None] & token_mask[:, None, :]).repeat_interleave(n_t, dim=0)
        u = self.proj_feat(feats) + self.proj_z(self.norm_z(z))[:, None]
        u = self.stack(u.flatten(0, 1), token_pair)
        u = self.norm_out(u).view(z.shape[0], n_t, n, n, -1)
        real = pb_mask.any(-1)[:, :, None, None, None].to(u.dtype)  # (B, T, 1, 1, 1)
        u = (u * real).sum(1) / real.sum(1).clamp(min=1.0)
        return self.proj_out(F.relu(u))
