"""Test-wide settings. TRITON_INTERPRET must be set before any kernel module is imported (SPEC.md §5)."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
