"""Confidence head (AF3 Algorithm 31): pLDDT, PAE, PDE and experimentally-resolved logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import ModelConfig
from models.lddt import EXACT
from models.modules.atom_attention import tokens_to_atoms
from models.modules.heads import N_CONFIDENCE_DISTANCE_BINS, atom_slot, confidence_distance_edges
from models.modules.pairformer import Pairformer
from models.modules.primitives import linear, row_chunks


class ConfidenceHead(nn.Module):
    """Inputs (detached by the caller): s_inputs (B, N, c_s_inputs), s (B, N, c_s), z (B, N, N, c_z), predicted
    coordinates x (B, S, A, 3) Å. Outputs per sample: plddt_logits (B, S, A, n_plddt), pae_logits and
    pde_logits (B, S, N, N, n_bins), resolved_logits (B, S, A, 2).

    Per-atom heads use one weight matrix per atom slot within the token (up to ``max_atoms_per_token``).

    In AF3 the per-atom heads read the single representation only, so what a sample's coordinates say about a
    token reaches pLDDT through the Pairformer's pair-biased single attention alone. A CPU miniature's head
    never opens that route: trained, a token's pLDDT moves between samples by 6e-6 of what its true lDDT moves,
    which varies more between samples than between tokens (BENCHMARKS.md, "confidence head"). With
    ``config.confidence_pair_readout`` (off by default, as in AF3) each token's single also gets a projection
    of the masked mean over j of its final pair row, a direct route from the embedded sample distances to pLDDT.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c_s, c_z = config.c_s, config.c_z
        self.config = config
        self.proj_row = linear(config.s_inputs_dim, c_z)
        self.proj_col = linear(config.s_inputs_dim, c_z)
        self.norm_s, self.norm_z = nn.LayerNorm(c_s), nn.LayerNorm(c_z)
        self.proj_dist = linear(N_CONFIDENCE_DISTANCE_BINS, c_z)
        self.pairformer = Pairformer(config, config.n_confidence_blocks)
        self.norm_s_out, self.norm_z_out = nn.LayerNorm(c_s), nn.LayerNorm(c_z)
        self.proj_pae = linear(c_z, config.n_pae_bins)
        self.proj_pde = linear(c_z, config.n_pde_bins)
        slots = config.max_atoms_per_token
        self.proj_plddt = linear(c_s, slots * config.n_plddt_bins)
        self.proj_resolved = linear(c_s, slots * 2)
        if config.confidence_pair_readout:
            # LeCun, not zero: a fresh head then reads the pair track at random, which is the chance level a
            # trained head is compared against (benchmarks/confidence_calibration.py).
            self.norm_readout = nn.LayerNorm(c_z)
            self.proj_readout = linear(c_z, c_s)
        self.chunk_size: int | None = None  # rows of the readout's pair pooling at a time (SeedFold.set_chunk_size)

    def forward(self, batch: dict[str, Tensor], s_inputs: Tensor, s: Tensor, z: Tensor, x: Tensor) -> dict:
        b, n_samples = x.shape[:2]
        token_mask = batch["token_mask"]
        z = self.norm_z(z) + self.proj_row(s_inputs)[:, :, None] + self.proj_col(s_inputs)[:, None]
        # AF3 Algorithm 31 embeds distances between representative atoms (CB, CA for GLY, C4 / C2 for
        # purines / pyrimidines, the ligand atom): the distogram's atoms, not the token centres.
        rep = torch.gather(x, 2, batch["token_disto_atom"][:, None, :, None].expand(-1, n_samples, -1, 3))
        dist = torch.cdist(rep, rep, compute_mode=EXACT)  # (B, S, N, N)
        edges = confidence_distance_edges(device=x.device)
        dist_bins = F.one_hot(torch.bucketize(dist, edges), N_CONFIDENCE_DISTANCE_BINS).to(z.dtype)
        z = z[:, None] + self.proj_dist(dist_bins)  # (B, S, N, N, c_z)
        s = self.norm_s(s)[:, None].expand(-1, n_samples, -1, -1)
        n = z.shape[2]
        per_sample_mask = token_mask.repeat_interleave(n_samples, dim=0)
        policy = self.config.policy
        with policy.autocast(z.device, policy.confidence_precision):
            s, z = self.pairformer(
                s.reshape(b * n_samples, n, -1), z.reshape(b * n_samples, n, n, -1), per_sample_mask
            )
        s, z = s.float(), z.float()
        if self.config.confidence_pair_readout:
            s = s + self.proj_readout(self._mean_pair_row(z, per_sample_mask))
        s = self.norm_s_out(s).view(b, n_samples, n, -1)
        z = self.norm_z_out(z).view(b, n_samples, n, n, -1)
        slot = atom_slot(batch["atom_to_token"], n).clamp(max=self.config.max_atoms_per_token - 1)

        def per_atom(proj: nn.Linear, n_bins: int) -> Tensor:
            logits = tokens_to_atoms(proj(s), batch["atom_to_token"])  # (B, S, A, slots * bins)
            logits = logits.view(*logits.shape[:-1], -1, n_bins)
            idx = slot[:, None, :, None, None].expand(-1, n_samples, -1, 1, n_bins)
            return torch.gather(logits, 3, idx)[:, :, :, 0]

        return {
            "plddt_logits": per_atom(self.proj_plddt, self.config.n_plddt_bins),
            "resolved_logits": per_atom(self.proj_resolved, 2),
            "pae_logits": self.proj_pae(z),
            "pde_logits": self.proj_pde(z + z.transpose(2, 3)),
        }

    def _mean_pair_row(self, z: Tensor, token_mask: Tensor) -> Tensor:
        """mean over real j of LayerNorm(z_ij): (B, N, c_z) for z (B, N, N, c_z), ``chunk_size`` rows at a time."""
        keys = token_mask[:, None, :, None].to(z.dtype)  # (B, 1, N, 1)
        count = keys.sum(2).clamp(min=1.0)  # (B, 1, 1)
        rows = [(self.norm_readout(z[:, r]) * keys).sum(2) / count for r in row_chunks(z.shape[1], self.chunk_size)]
        return torch.cat(rows, dim=1) * token_mask[..., None].to(z.dtype)
