"""Checkpoints a run can resume from, roll back to and be evaluated at.

Each save writes ``checkpoints/step-00000100.ckpt`` atomically (to ``.tmp``, then renamed, so a process killed
mid-write leaves the previous files intact) and points ``last.ckpt`` at it (a hard link, renamed into place): the
run resumes from ``last.ckpt``.

- **Good checkpoints** are the stability guard's rollback targets: a checkpoint is good when the guard saw no
  loss spike and no non-finite step in the ``spike_window`` steps before it (or since step 0). A checkpoint saved
  while a collapse was building up would only replay it.
- **Kept**: the newest ``keep_checkpoints``, every milestone (``milestone_every``, ``milestone_steps``: the analysis
  evaluates them later) and the newest good one. Older files are deleted. ``state.json`` lists what is kept:
  ``checkpoints: [{step, file, good, milestone}]``.

After a save the logger is told that rows up to this step are durable (they go to MLflow; see
``harness.tracking.sync``).
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L

from harness.config import TrainConfig
from harness.tracking.run_folder import RunFolder


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.ckpt"


class CheckpointKeeper(L.Callback):
    def __init__(self, folder: RunFolder, train: TrainConfig):
        self.folder = folder
        self.every = train.checkpoint_every
        self.keep = train.keep_checkpoints
        self.milestone_every = train.milestone_every
        self.milestone_steps = set(train.milestone_steps)
        self.window = train.guard.spike_window
        self._saved_step = -1

    @property
    def path(self) -> Path:
        return self.folder.last_checkpoint

    def is_milestone(self, step: int) -> bool:
        return step in self.milestone_steps or bool(self.milestone_every and step % self.milestone_every == 0)

    def entries(self) -> list[dict]:
        return list(self.folder.read_state().get("checkpoints", []))

    def last_good(self) -> Path | None:
        """The newest good checkpoint still on disk (rollback target)."""
        for entry in reversed(self.entries()):
            path = self.folder.checkpoint_dir / entry["file"]
            if entry["good"] and path.exists():
                return path
        return None

    def save(self, trainer: L.Trainer, pl_module) -> None:
        step = trainer.global_step
        if step == self._saved_step:
            return
        target = self.folder.checkpoint_dir / checkpoint_name(step)
        tmp = target.with_name(target.name + ".tmp")
        trainer.save_checkpoint(tmp)  # collective under DDP; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, target)
            link = self.path.with_name(self.path.name + ".tmp")
            link.unlink(missing_ok=True)
            os.link(target, link)
            os.replace(link, self.path)
            guard = pl_module.guard
            good = guard.clean_steps >= min(self.window, step) and guard.consecutive_nonfinite == 0
            self._record(step, target.name, good)
            logger = trainer.logger
            if hasattr(logger, "checkpoint_saved"):
                logger.checkpoint_saved(step)
        trainer.strategy.barrier("checkpoint-keeper")
        self._saved_step = step

    def _record(self, step: int, name: str, good: bool) -> None:
        entries = [e for e in self.entries() if e["step"] < step]
        entries.append({"step": step, "file": name, "good": good, "milestone": self.is_milestone(step)})
        recent = {e["step"] for e in entries[-self.keep:]}
        newest_good = next((e["step"] for e in reversed(entries) if e["good"]), None)
        kept = [e for e in entries if e["step"] in recent or e["milestone"] or e["step"] == newest_good]
        self.folder.update_state(checkpoints=kept)
        names_kept = {e["file"] for e in kept}
        for path in self.folder.checkpoint_dir.glob("step-*.ckpt"):
            if path.name not in names_kept:
                path.unlink(missing_ok=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step > 0 and (step % self.every == 0 or self.is_milestone(step)):
            self.save(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer, pl_module)
