"""The function a sweep submits: train one run in its folder. Requeue-safe (submitit ``Checkpointable``).

On preemption or time limit submitit calls ``checkpoint()``, which resubmits this same call; the training
entry point resumes from ``<run_dir>/checkpoints/last.ckpt`` and logs into the same MLflow run (its id is kept
in ``<run_dir>/state.json``), so a requeued run continues at its last checkpointed step.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import submitit

TRAIN_ENTRYPOINT = "harness.train.run:train_run"


def resolve_entrypoint(entrypoint: str | Callable[..., Any]) -> Callable[..., Any]:
    """``"package.module:function"`` → the function (callables pass through)."""
    if callable(entrypoint):
        return entrypoint
    module, _, name = entrypoint.partition(":")
    return getattr(importlib.import_module(module), name)


class TrainJob(submitit.helpers.Checkpointable):
    """``TrainJob()(config, run_dir, experiment_id, tags)`` calls ``train_run`` with a validated RunConfig.

    ``entrypoint`` has train_run's signature ``(config, run_dir, *, experiment_id, tags) -> dict``; tests pass
    a small trainer of their own to exercise dispatch without the model.
    """

    def __init__(self, entrypoint: str | Callable[..., Any] = TRAIN_ENTRYPOINT):
        self.entrypoint = entrypoint

    def __call__(self, config: dict[str, Any], run_dir: str, experiment_id: str | None,
                 tags: dict[str, str]) -> dict[str, Any]:
        from harness.config import RunConfig

        run_config = RunConfig.model_validate(config)
        limit_threads(run_config.train.threads)
        fn = resolve_entrypoint(self.entrypoint)
        return fn(run_config, Path(run_dir), experiment_id=experiment_id, tags=tags)


def limit_threads(configured: int | None) -> None:
    """Without ``train.threads``, use the CPUs SLURM gave the job: with ``task/none`` torch would otherwise
    start one thread per core of the node, and jobs sharing a node slow each other down > 2x (docs/DESIGN.md §6)."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if configured is None and cpus and cpus.isdigit():
        import torch

        torch.set_num_threads(int(cpus))
