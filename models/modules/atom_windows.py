"""Sequence-local atom windows (AF3 §3.2): atoms are split into blocks of ``n_queries`` consecutive atoms, and
block n attends to the ``n_keys`` atoms centred on it. Everything atom-pair-shaped lives on this layout:
(B, n_blocks, n_queries, n_keys, ...), so memory is O(A) rather than O(A²)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class AtomWindows:
    """Index maps of the window layout.

    n_atoms: A (unpadded atom count of the batch); n_padded: A rounded up to a multiple of n_queries.
    key_index: (n_blocks, n_keys) long, atom index of every key, clamped into [0, A-1].
    key_valid: (B, n_blocks, n_keys) bool, key inside [0, A) and a real atom.
    query_valid: (B, n_blocks, n_queries) bool, query is a real atom.
    """

    n_atoms: int
    n_padded: int
    n_queries: int
    n_keys: int
    key_index: Tensor
    key_valid: Tensor
    query_valid: Tensor

    @property
    def n_blocks(self) -> int:
        return self.n_padded // self.n_queries

    @classmethod
    def build(cls, atom_mask: Tensor, n_queries: int, n_keys: int) -> AtomWindows:
        """atom_mask (B, A) bool."""
        b, a = atom_mask.shape
        n_blocks = -(-a // n_queries)
        n_padded = n_blocks * n_queries
        centres = torch.arange(n_blocks, device=atom_mask.device) * n_queries + n_queries // 2
        raw = centres[:, None] - n_keys // 2 + torch.arange(n_keys, device=atom_mask.device)[None]
        in_range = (raw >= 0) & (raw < a)
        key_index = raw.clamp(0, a - 1)
        key_valid = in_range[None] & atom_mask[:, key_index]
        query_valid = pad_atoms(atom_mask, n_padded).view(b, n_blocks, n_queries)
        return cls(a, n_padded, n_queries, n_keys, key_index, key_valid, query_valid)

    def queries(self, x: Tensor, atom_dim: int) -> Tensor:
        """(..., A, ...) -> (..., n_blocks, n_queries, ...) along ``atom_dim`` (zero-padded)."""
        x = pad_atoms(x, self.n_padded, dim=atom_dim)
        shape = list(x.shape)
        shape[atom_dim : atom_dim + 1] = [self.n_blocks, self.n_queries]
        return x.reshape(shape)

    def keys(self, x: Tensor, atom_dim: int) -> Tensor:
        """(..., A, ...) -> (..., n_blocks, n_keys, ...) along ``atom_dim``."""
        flat = x.index_select(atom_dim, self.key_index.flatten())
        shape = list(x.shape)
        shape[atom_dim : atom_dim + 1] = [self.n_blocks, self.n_keys]
        return flat.reshape(shape)

    def unblock(self, x: Tensor, block_dim: int) -> Tensor:
        """(..., n_blocks, n_queries, ...) -> (..., A, ...)."""
        shape = list(x.shape)
        shape[block_dim : block_dim + 2] = [self.n_padded]
        return x.reshape(shape).narrow(block_dim, 0, self.n_atoms)


def pad_atoms(x: Tensor, n: int, dim: int = 1) -> Tensor:
    """Zero-pad ``x`` along ``dim`` to length n."""
    missing = n - x.shape[dim]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x, x.new_zeros(shape)], dim=dim)
