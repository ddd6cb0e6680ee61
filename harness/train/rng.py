"""The training loop's random streams: one seed per (stream, run seed, optimizer step, micro-batch[, rank]), and
the global RNG state a checkpoint carries.

Two streams, each a pure function of where training is, so a resumed run draws what it would have drawn:

- ``RANK``: the global torch RNG (CPU and CUDA) before each micro-batch, different on every DDP rank (σ,
  rotations, noise, dropout masks); numpy's ``SeedSequence`` mixes the tuple so nearby tuples give unrelated
  streams.
- ``RECYCLING``: the recycling count of a micro-batch, the same on every rank (every rank must run the same
  number of cycles); a linear mix of the tuple into a ``torch.Generator`` seed. Its constants are those every
  recorded run drew its cycle counts with: changing them changes what a run trains on.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

RANK = "rank"
RECYCLING = "recycling"
# The recycling stream's mix, seed x SEED_STRIDE + step + MICRO_STRIDE x micro-batch (two primes, so (seed, step,
# micro) tuples of realistic size do not collide).
_RECYCLING_SEED_STRIDE = 1_000_003
_RECYCLING_MICRO_STRIDE = 7_919_993


def stream_seed(stream: str, seed: int, step: int, micro: int = 0, rank: int = 0) -> int:
    """The seed of ``stream`` (``RANK`` or ``RECYCLING``; the latter ignores ``rank``) at the run's ``seed``,
    optimizer ``step`` and ``micro``-batch of that step: a 64-bit integer."""
    if stream == RANK:
        return int(np.random.SeedSequence([seed % 2**63, rank, step, micro]).generate_state(1, np.uint64)[0])
    if stream == RECYCLING:
        return seed * _RECYCLING_SEED_STRIDE + step + _RECYCLING_MICRO_STRIDE * micro
    raise ValueError(f"unknown random stream {stream!r}; expected {RANK!r} or {RECYCLING!r}")


def step_seed(seed: int, rank: int, step: int, micro: int = 0) -> int:
    """The ``RANK`` stream's seed for (seed, rank, optimizer step, micro-batch)."""
    return stream_seed(RANK, seed, step, micro, rank)


def draw_cycles(seed: int, step: int, micro: int, max_cycles: int) -> int:
    """The recycling count of a micro-batch, uniform in 1..max_cycles, the same on every rank."""
    g = torch.Generator().manual_seed(stream_seed(RECYCLING, seed, step, micro))
    return int(torch.randint(1, max_cycles + 1, (1,), generator=g))


def global_rng_state() -> dict[str, Any]:
    """torch's, numpy's and Python's global RNG state, as a checkpoint stores it (tensors and lists only)."""
    return {
        "rng_torch": torch.get_rng_state(),
        "rng_numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "rng_numpy_pos": int(np.random.get_state()[2]),
        "rng_python": list(random.getstate()[1]),
    }


def restore_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``global_rng_state`` returned (the keys of a checkpoint's ``harness`` section)."""
    torch.set_rng_state(state["rng_torch"])
    np.random.set_state(("MT19937", state["rng_numpy"].numpy().astype(np.uint32), state["rng_numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["rng_python"]), None))
