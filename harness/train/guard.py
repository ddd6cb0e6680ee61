"""Stability guard: the paper's width > 256 runs showed gradient-norm explosions and loss collapse.

Pure bookkeeping, no torch: the module asks ``observe`` what to do with each step's loss and gradient norm.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from enum import Enum

from harness.config import GuardConfig


class Action(Enum):
    APPLY = "apply"  # take the optimizer step
    SKIP = "skip"  # non-finite loss or gradient: drop this step
    ROLLBACK = "rollback"  # restore the last good checkpoint and lower the learning rate


class StabilityGuard:
    def __init__(self, config: GuardConfig):
        self.config = config
        self.recent: deque[float] = deque(maxlen=config.spike_window)
        self.consecutive_nonfinite = 0
        self.consecutive_spikes = 0
        self.skipped = 0
        self.rollbacks = 0
        self.clean_steps = 0  # steps since the last spike or non-finite step (what makes a checkpoint "good")

    def observe(self, loss: float, grad_norm: float | None) -> Action:
        """Decide what to do with a step whose loss (and gradient norm, if computed) is given."""
        if not self.config.enabled:
            self.clean_steps += 1
            return Action.APPLY
        finite = math.isfinite(loss) and (grad_norm is None or math.isfinite(grad_norm))
        if not finite:
            self.clean_steps = 0
            self.skipped += 1
            self.consecutive_nonfinite += 1
            if self.consecutive_nonfinite >= self.config.max_nonfinite and self._can_roll_back():
                self.consecutive_nonfinite = 0
                return Action.ROLLBACK
            return Action.SKIP
        self.consecutive_nonfinite = 0
        if self.is_spike(loss):
            # A collapse persists; one heavy-tailed batch does not. Spiking losses stay out of the median.
            self.clean_steps = 0
            self.consecutive_spikes += 1
            if self.consecutive_spikes >= self.config.spike_patience and self._can_roll_back():
                self.consecutive_spikes = 0
                return Action.ROLLBACK
            return Action.APPLY
        self.consecutive_spikes = 0
        self.clean_steps += 1
        self.recent.append(loss)
        return Action.APPLY

    def is_spike(self, loss: float) -> bool:
        if len(self.recent) < self.recent.maxlen:
            return False
        return loss > self.config.spike_factor * statistics.median(self.recent)

    def _can_roll_back(self) -> bool:
        return self.rollbacks < self.config.max_rollbacks

    def rolled_back(self) -> None:
        self.rollbacks += 1
        self.clean_steps = 0
        self.recent.clear()

    def state_dict(self) -> dict:
        return {"recent": list(self.recent), "skipped": self.skipped, "rollbacks": self.rollbacks,
                "consecutive_nonfinite": self.consecutive_nonfinite, "consecutive_spikes": self.consecutive_spikes,
                "clean_steps": self.clean_steps}

    def load_state_dict(self, state: dict) -> None:
        self.recent.clear()
        self.recent.extend(state["recent"])
        self.skipped = state["skipped"]
        self.rollbacks = state["rollbacks"]
        self.consecutive_nonfinite = state["consecutive_nonfinite"]
        self.consecutive_spikes = state.get("consecutive_spikes", 0)
        self.clean_steps = state.get("clean_steps", 0)
