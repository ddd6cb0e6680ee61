"""Learning-rate schedules: linear warmup, then AF3's step decay or warmup–stable–decay (``train.schedule``)."""

from __future__ import annotations

import math

from harness.config import TrainConfig


def lr_multiplier(step: int, train: TrainConfig) -> float:
    """Multiplier of ``train.lr`` at optimizer step ``step`` (0-based, before the step is taken).

    ``af3``: × ``lr_decay_factor`` every ``lr_decay_every`` steps. ``wsd``: 1 until the cooldown starts at
    ``schedule.decay_start(max_steps)``, then falling towards 0 by the fraction p of the cooldown done (p = 0 at
    its first step, (n − 1)/n at the run's last): ``1 − √p`` or ``1 − p``."""
    warm = 1.0 if train.warmup_steps == 0 else min(1.0, (step + 1) / train.warmup_steps)
    schedule = train.schedule
    if schedule.kind == "af3":
        return warm * train.lr_decay_factor ** (step // train.lr_decay_every)
    start = schedule.decay_start(train.max_steps)
    if step < start:
        return warm
    done = min(1.0, (step - start) / (train.max_steps - start))
    return warm * (1.0 - (math.sqrt(done) if schedule.decay_shape == "1-sqrt" else done))
