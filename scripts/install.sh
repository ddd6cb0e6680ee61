#!/usr/bin/env bash
# Install the project and its Python dependencies into the current Python environment.
# torch first: a plain `pip install` of the project would otherwise fetch a multi-GB CUDA build. An existing
# torch in the supported range (e.g. a CUDA build on a GPU machine) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$PY" - <<'PYEOF' 2>/dev/null
import torch, sys
major, minor = (int(x) for x in torch.__version__.split(".")[:2])
sys.exit(0 if (2, 4) <= (major, minor) < (2, 15) else 1)
PYEOF
then
    "$PY" -m pip install --quiet "torch==2.13.0"
fi
# pyproject.toml accepts every Triton a supported torch pins, so pip keeps the one a CUDA torch brought.
"$PY" -m pip install --quiet -e ".[dev]"
"$PY" - <<'PYEOF'
import importlib.metadata as metadata

import torch

try:
    triton = metadata.version("triton")
except metadata.PackageNotFoundError:
    triton = "not installed"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton}")
PYEOF
