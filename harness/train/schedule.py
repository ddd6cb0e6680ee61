"""AF3 learning-rate schedule: linear warmup, then x ``decay_factor`` every ``decay_every`` steps."""

from __future__ import annotations

from harness.config import TrainConfig


def lr_multiplier(step: int, train: TrainConfig) -> float:
    """Multiplier of ``train.lr`` at optimizer step ``step`` (0-based, before the step is taken)."""
    warm = 1.0 if train.warmup_steps == 0 else min(1.0, (step + 1) / train.warmup_steps)
    return warm * train.lr_decay_factor ** (step // train.lr_decay_every)
