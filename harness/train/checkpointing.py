"""Atomic checkpoints: write ``last.ckpt.tmp`` then rename, so a process killed mid-write leaves the previous
checkpoint intact. Only steps the stability guard considers healthy are saved (they are rollback targets)."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L


class AtomicCheckpoint(L.Callback):
    def __init__(self, path: Path, every_n_steps: int):
        self.path = Path(path)
        self.every = every_n_steps
        self._saved_step = -1

    def save(self, trainer: L.Trainer) -> None:
        step = trainer.global_step
        if step == self._saved_step:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(tmp)  # collective under DDP; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        trainer.strategy.barrier("atomic-checkpoint")
        self._saved_step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        healthy = pl_module.guard.consecutive_nonfinite == 0
        if step > 0 and step % self.every == 0 and healthy:
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)
