"""What a training step costs on the device it ran on: the second cost axis of a study, beside analytic FLOPs.

Analytic FLOPs say what a GPU at scale pays; measured device-seconds say what the machine that trained paid, and
at miniature sizes the two disagree by several × (tiny models are overhead-bound). A study records both and says
which one it compares on.

- On CUDA: wall seconds of the step (the loss is read on the host before the step ends, which synchronises),
  summed over ranks: GPU-seconds.
- On CPU: the process's CPU seconds (user + system, every thread), summed over ranks: core-seconds. CPU time,
  not wall time, so that another job sharing the machine does not inflate the figure (it does, a little, through
  shared caches).
"""

from __future__ import annotations

import os
import platform
import time

import torch


class DeviceClock:
    """Seconds a device has spent: ``lap()`` returns the seconds since the previous lap (or ``start()``)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        self._last: float | None = None

    def now(self) -> float:
        return time.perf_counter() if self.cuda else time.process_time()

    def start(self) -> None:
        self._last = self.now()

    def pause(self) -> None:
        """Stop counting until the next ``start`` (validation is not training cost)."""
        self._last = None

    def lap(self) -> float:
        now = self.now()
        last, self._last = self._last, now
        return 0.0 if last is None else now - last


def describe_device(device: torch.device, world_size: int) -> tuple[str, str]:
    """``(device, time basis)`` as recorded with a run: what trained it, and what its seconds count."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"cuda: {name} x {world_size}", "wall seconds x GPUs"
    cpu = _cpu_model() or platform.processor() or "unknown CPU"
    return (f"cpu: {cpu}, {torch.get_num_threads()} thread(s) x {world_size} process(es)",
            "process CPU seconds (all threads), summed over processes")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.environ.get("PROCESSOR_IDENTIFIER", "")
