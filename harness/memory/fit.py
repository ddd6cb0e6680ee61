"""The fit check before submission: every stage of every run must fit the GPU's memory with 10 % headroom, by its
traced training step (``harness.memory.plan``); otherwise the sweep is refused, one line per run that does not
fit, unless forced."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.memory.plan import HEADROOM, StagePlan


class MemoryFitError(HarnessError):
    """Runs whose traced training step needs more than the GPU's memory less headroom."""


def misfits(plans: dict[str, list[StagePlan]], gpu_memory_gb: float) -> list[str]:
    """One line per run (label -> its stage plans) whose worst stage needs more than 90 % of ``gpu_memory_gb``."""
    limit = (1 - HEADROOM) * gpu_memory_gb
    lines = []
    for label, stages in plans.items():
        stages = [p for p in stages if p.memory is not None]  # a GPU run's stages are all traced
        if not stages:
            continue
        worst = max(stages, key=lambda p: p.memory.peak_bytes)
        if worst.memory.peak_gb > limit:
            lines.append(f"run {label}: traced {worst.memory.peak_gb:.1f} GB per GPU at crop {worst.crop_tokens} "
                         f"(stage from step {worst.start}) exceeds {limit:.1f} GB (90 % of a {gpu_memory_gb:g} GB "
                         f"GPU); set model.policy.memory_target_gb: {limit:g} with diffusion_chunk_size, "
                         "checkpoint_sublayers and checkpoint_group auto (or chunk by hand), or --force")
    return lines


def check_fit(plans: dict[str, list[StagePlan]], gpu_memory_gb: float | None) -> None:
    """Raise ``MemoryFitError`` listing every run that does not fit; nothing when the GPU memory is unknown."""
    if gpu_memory_gb is None:
        return
    lines = misfits(plans, gpu_memory_gb)
    if lines:
        raise MemoryFitError("\n".join(lines))
