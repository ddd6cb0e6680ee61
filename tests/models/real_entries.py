"""Whole starter-set entries featurised through ``harness.data`` (no crop), for oracle tests on real geometry."""

from __future__ import annotations

import functools

import numpy as np
import torch

from harness.data.collate import collate
from harness.data.example import build_example
from harness.data.featurize import featurize
from harness.data.starter import starter_dir


@functools.cache
def _arrays(entry: str) -> dict:
    path = next((starter_dir() / "structures").glob(f"{entry}.*"))
    _, tokens, _ = build_example(path, None, max_msa_rows=4)
    return tokens.arrays


def arrays(entry: str) -> dict:
    return dict(_arrays(entry))


def real_batch(entry: str, *, augment_ref: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every token of ``entry`` as a batch of one (reference conformers un-augmented unless asked)."""
    a = _arrays(entry)
    ex = featurize(a, np.arange(len(a["restype"])), 4, np.random.default_rng(seed), augment_ref=augment_ref)
    return {k: v for k, v in collate([ex]).items() if isinstance(v, torch.Tensor)}
