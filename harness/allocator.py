"""glibc malloc tuning for CPU runs: keep freed memory in the heap instead of returning it to the kernel.

PyTorch on CPU allocates and frees tensors of many MiB every step. With glibc's defaults each allocation above
the mmap threshold is a fresh ``mmap`` whose pages fault in one by one, and each free returns them; on the
project's VMs those page faults cost more system time than the arithmetic costs user time (BENCHMARKS.md,
"CPU memory allocator"). ``mallopt(M_MMAP_MAX, 0)`` serves every allocation from the heap and a large
``M_TRIM_THRESHOLD`` stops the heap from shrinking, so pages are faulted once and reused: the in-program
equivalent of ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=…``, which ``scripts/quickstart.sh`` exports.

``SEEDFOLD_MALLOC``: ``auto`` (default: tune on Linux/glibc machines without an NVIDIA GPU), ``on`` or ``off``.
If the user already set ``MALLOC_MMAP_MAX_`` or ``MALLOC_TRIM_THRESHOLD_``, glibc applied them and they win.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

ENV = "SEEDFOLD_MALLOC"
# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# mallopt takes an int: 2 GiB - 1 is the largest trim threshold it can express (glibc's env var takes more).
TRIM_THRESHOLD = 2**31 - 1

_state: str | None = None


def has_nvidia_gpu() -> bool:
    """An NVIDIA device node exists (checked without importing torch, so the CLI stays fast)."""
    return Path("/dev/nvidiactl").exists() or Path("/dev/nvidia0").exists()


def tune_allocator() -> str:
    """Apply the setting once per process; returns what is in effect, also recorded with each training run:
    ``tuned`` (mallopt applied), ``env`` (the user's MALLOC_* variables), ``off`` (SEEDFOLD_MALLOC=off, or
    ``auto`` on a GPU machine), or ``unsupported`` (not Linux/glibc)."""
    global _state
    if _state is not None:
        return _state
    mode = os.environ.get(ENV, "auto").strip().lower()
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"{ENV}={mode!r}; expected auto, on or off")
    if "MALLOC_MMAP_MAX_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        _state = "env"
    elif mode == "off" or (mode == "auto" and has_nvidia_gpu()):
        _state = "off"
    elif not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        _state = "unsupported"
    else:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        _state = "tuned" if ok else "unsupported"
    return _state
