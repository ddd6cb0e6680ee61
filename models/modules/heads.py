"""Distogram head (AF3 §4.4) and the bin edges shared by heads and losses."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.modules.primitives import linear

DISTOGRAM_RANGE = (2.3125, 21.6875)  # Å, first and last bin edge (docs/DESIGN.md §1.1)
CONFIDENCE_DISTANCE_RANGE = (3.25, 52.0)  # Å, span of the confidence head's distance embedding (AF3 Alg. 31)
N_CONFIDENCE_DISTANCE_BINS = 39  # AF3: 39 bins of 1.25 Å (3.25 + 39 x 1.25 = 52)


def bin_edges(lo: float, hi: float, n_bins: int, device=None) -> Tensor:
    """n_bins - 1 interior edges, evenly spaced from lo to hi (Å); bin k holds d in [edge_{k-1}, edge_k)."""
    return torch.linspace(lo, hi, n_bins - 1, device=device)


def confidence_distance_edges(device=None) -> Tensor:
    """The 38 interior edges 4.5, 5.75, ..., 50.75 Å of AF3's 39 confidence distance bins of 1.25 Å; distances
    below 3.25 Å fall in the first bin, beyond 52 Å in the last."""
    lo, hi = CONFIDENCE_DISTANCE_RANGE
    step = (hi - lo) / N_CONFIDENCE_DISTANCE_BINS
    return lo + step * torch.arange(1, N_CONFIDENCE_DISTANCE_BINS, device=device, dtype=torch.float32)


def distogram_edges(n_bins: int, device=None) -> Tensor:
    return bin_edges(*DISTOGRAM_RANGE, n_bins, device=device)


class DistogramHead(nn.Module):
    """z (B, N, N, c_z) -> symmetric logits (B, N, N, n_bins)."""

    def __init__(self, c_z: int, n_bins: int) -> None:
        super().__init__()
        self.proj = linear(c_z, n_bins)

    def forward(self, z: Tensor) -> Tensor:
        return self.proj(z + z.transpose(1, 2))


def atom_slot(atom_to_token: Tensor, n_tokens: int) -> Tensor:
    """Position of each atom within its token: (B, A) long, for ``atom_to_token`` (B, A) indices into
    ``n_tokens`` tokens. Atoms of a token are contiguous."""
    b, a = atom_to_token.shape
    first = torch.full((b, n_tokens), a, dtype=torch.long, device=atom_to_token.device)
    position = torch.arange(a, device=atom_to_token.device).expand(b, a)
    first = first.scatter_reduce(1, atom_to_token, position, reduce="amin")
    return position - torch.gather(first, 1, atom_to_token)
