"""Autotuning of the triangle-attention kernels over their compile-checked configurations.

``tuned(name, key, configs, run)`` calls ``run(config)`` with the fastest of ``configs`` for this problem: on a
CUDA device the first call per (kernel, key) times every configuration (``triton.testing.do_bench``, median)
and keeps the fastest for the process. Host-side rather than ``triton.autotune`` because a configuration
changes the grid and the buffers (a bias-gradient split depends on the tile), which the host code computes.
Every kernel overwrites its outputs (none accumulates into memory it did not first write), so the timing runs
leave the result of the last call, which is a real one.

Nothing is timed under the interpreter or ``launch.capture_launches``, during CUDA-graph capture, or with one
configuration: the first configuration runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from models.kernels import launch
from models.kernels.launch_config import Tiles

T = TypeVar("T")

_best: dict[tuple, Tiles] = {}


def _timing_possible(device: torch.device) -> bool:
    return (
        device.type == "cuda" and not launch.capturing() and not torch.cuda.is_current_stream_capturing()
    )


def tuned(name: str, device: torch.device, key: tuple, configs: Sequence[Tiles], run: Callable[[Tiles], T]) -> T:
    """``run(config)`` for the fastest configuration of ``configs`` on ``device`` for ``key`` (the problem's
    sizes, dtype and flags); each configuration is timed once per process and key."""
    cache_key = (name, str(device), *key)
    if len(configs) == 1 or not _timing_possible(device):
        cached = _best.get(cache_key)
        return run(cached if cached in configs else configs[0])
    if cache_key not in _best:
        import triton.testing

        with torch.cuda.device(device):
            times = [triton.testing.do_bench(lambda c=c: run(c), warmup=5, rep=25) for c in configs]
        _best[cache_key] = configs[min(range(len(configs)), key=times.__getitem__)]
    return run(_best[cache_key])


def chosen() -> dict[tuple, str]:
    """Every tuned choice of this process: (kernel, device, key...) -> configuration, for a benchmark's record."""
    return {k: str(v) for k, v in _best.items()}


def clear() -> None:
    """Forget every choice (tests)."""
    _best.clear()
