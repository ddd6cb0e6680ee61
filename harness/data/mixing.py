"""Weighted mixing of named datasets (SeedFold: pdb 0.50 / afdb_distill 0.08 / mgnify_distill 0.42).

The sampler draws one global stream of ``(dataset, example, draw_seed)`` keys from ``(seed, epoch)`` and
gives rank r the draws r, r + W, r + 2W, ...: deterministic for a seed, identical on every rank, and no
draw is seen by two ranks. Within a dataset an example is drawn uniformly, uniformly over clusters (a cluster,
then a member), or in proportion to per-example weights (AF3: the sum of an entry's chain and interface
weights, ``clusters.py``). Each way is one ``rng.choice`` over a probability vector built once, so an
epoch costs O(entries + draws log entries).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


def _probabilities(size: int, clusters: np.ndarray | None, weights: np.ndarray | None) -> np.ndarray | None:
    """(size,) float64 draw probabilities, or None for uniform."""
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (size,) or (w < 0).any() or (size and w.sum() <= 0):
            raise ValueError(f"example weights must be {size} non-negative values with a positive sum")
        return w / w.sum() if size else None
    if clusters is None or size == 0:
        return None
    _, inverse, counts = np.unique(np.asarray(clusters), return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse.reshape(-1)]
    return w / w.sum()


class MixtureSampler(Sampler):
    """Yields ``(dataset_index, example_index, draw_seed)`` for :class:`~harness.data.dataset.MixtureDataset`.

    Args:
        sizes: examples per dataset.
        weights: sampling weight per dataset (normalised here).
        clusters: per dataset, None (uniform) or an (size,) int array of cluster ids (by-cluster sampling).
        example_weights: per dataset, None or a (size,) float array of sampling weights; takes precedence
            over ``clusters``.
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
        example_weights: Sequence[np.ndarray | None] | None = None,
    ):
        example_weights = list(example_weights) if example_weights is not None else [None] * len(sizes)
        if not (len(sizes) == len(weights) == len(clusters) == len(example_weights)):
            raise ValueError("sizes, weights, clusters and example_weights must have one entry per dataset")
        w = np.asarray(weights, dtype=np.float64) * (np.asarray(sizes) > 0)
        if w.sum() <= 0:
            raise ValueError("no dataset with a positive weight has any example")
        self.p = w / w.sum()
        self.sizes = list(sizes)
        self.example_p = [
            _probabilities(size, c, w) for size, c, w in zip(sizes, clusters, example_weights, strict=True)
        ]
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.epoch = 0
        self._resume = 0
        self._rank, self._world = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, draws: int) -> None:
        """Continue this rank's stream after its first ``draws`` draws (those a resumed run already trained on):
        the next epoch iterated starts at that point of its own stream, later epochs from their start. So a run
        resumed from a checkpoint, or branched off another run's, sees the draws it would have seen uninterrupted."""
        self._resume = draws

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
            if len(hits):
                examples[hits] = rng.choice(size, size=len(hits), p=self.example_p[d])
        seeds = rng.integers(0, 2**31 - 1, total)
        return np.stack([which, examples, seeds], axis=1)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        rank, world = self._rank_world()
        stream = self.draws(self.samples_per_epoch * world)[rank::world]
        skip, self._resume = max(0, self._resume - self.epoch * self.samples_per_epoch), 0
        for d, i, s in stream[skip:]:
            yield int(d), int(i), int(s)
