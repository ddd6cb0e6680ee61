"""Pad a list of examples to a batch: a leading B, and N/A/S padded with zeros (``*_mask`` marks real)."""

from __future__ import annotations

import torch

from models.features import FEATURES


def collate(examples: list[dict]) -> dict:
    """Stack FEATURES with zero padding; non-tensor keys (``entry_id``) become lists."""
    sizes: dict[str, int] = {}
    for ex in examples:
        for name, spec in FEATURES.items():
            for dim, symbol in zip(ex[name].shape, spec.shape, strict=True):
                if not symbol.isdigit():
                    sizes[symbol] = max(sizes.get(symbol, 0), dim)
    batch: dict = {}
    for name, spec in FEATURES.items():
        shape = [len(examples)] + [int(s) if s.isdigit() else sizes[s] for s in spec.shape]
        out = torch.zeros(shape, dtype=spec.dtype)
        for i, ex in enumerate(examples):
            t = ex[name]
            out[(i, *[slice(0, d) for d in t.shape])] = t
        batch[name] = out
    for key in examples[0]:
        if key not in FEATURES:
            batch[key] = [ex[key] for ex in examples]
    return batch
