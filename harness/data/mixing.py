"""Weighted mixing of named datasets (SeedFold: pdb 0.50 / afdb_distill 0.08 / mgnify_distill 0.42).

The sampler draws one global stream of ``(dataset, example, draw_seed)`` keys from ``(seed, epoch)`` and
gives rank r the draws r, r + W, r + 2W, ...: deterministic for a seed, identical on every rank, and no
draw is seen by two ranks. Within a dataset, ``uniform`` picks an example uniformly; ``cluster`` picks a
cluster uniformly, then a member (AF3-style down-weighting of large clusters).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


class MixtureSampler(Sampler):
    """Yields ``(dataset_index, example_index, draw_seed)`` for :class:`~harness.data.dataset.MixtureDataset`.

    Args:
        sizes: examples per dataset.
        weights: sampling weight per dataset (normalised here).
        clusters: per dataset, None (uniform) or an (size,) int array of cluster ids (by-cluster sampling).
        samples_per_epoch: draws per rank per epoch.
        rank, world_size: default to torch.distributed's when it is initialised at iteration time.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float],
        clusters: Sequence[np.ndarray | None],
        samples_per_epoch: int,
        seed: int,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        if not (len(sizes) == len(weights) == len(clusters)):
            raise ValueError("sizes, weights and clusters must have one entry per dataset")
        w = np.asarray(weights, dtype=np.float64) * (np.asarray(sizes) > 0)
        if w.sum() <= 0:
            raise ValueError("no dataset with a positive weight has any example")
        self.p = w / w.sum()
        self.sizes = list(sizes)
        self.clusters = [None if c is None else np.asarray(c) for c in clusters]
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.epoch = 0
        self._rank, self._world = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rank_world(self) -> tuple[int, int]:
        if self._rank is not None:
            return self._rank, self._world or 1
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        return self.samples_per_epoch

    def draws(self, total: int) -> np.ndarray:
        """(total, 3) int64 global stream of (dataset, example, draw_seed) for the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        which = rng.choice(len(self.p), size=total, p=self.p)
        examples = np.zeros(total, dtype=np.int64)
        for d, size in enumerate(self.sizes):
            hits = np.flatnonzero(which == d)
            if not len(hits):
                continue
            if self.clusters[d] is None:
                examples[hits] = rng.integers(0, size, len(hits))
            else:
                ids, inverse = np.unique(self.clusters[d], return_inverse=True)
                members = [np.flatnonzero(inverse == k) for k in range(len(ids))]
                chosen = rng.integers(0, len(ids), len(hits))
                pick = rng.random(len(hits))
                examples[hits] = [
                    members[c][int(u * len(members[c]))] for c, u in zip(chosen, pick, strict=True)
                ]
        seeds = rng.integers(0, 2**31 - 1, total)
        return np.stack([which, examples, seeds], axis=1)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        rank, world = self._rank_world()
        stream = self.draws(self.samples_per_epoch * world)[rank::world]
        for d, i, s in stream:
            yield int(d), int(i), int(s)
