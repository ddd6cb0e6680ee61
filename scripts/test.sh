#!/usr/bin/env bash
# Run the test suite against real services: installs the project, Chromium (headless UI checks) and a real
# one-node SLURM with accounting, runs pytest, and stops every service on exit.
# Usage: bash scripts/test.sh [extra pytest args]   (SEEDFOLD_TEST_FAST=1 skips the tests marked slow)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install.sh
# MMseqs2 for chain clustering at 40% identity (data tests); the quickstart falls back to exact sequences.
bash scripts/install_data_tools.sh
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
bash slurm/testing/up.sh
trap 'bash slurm/testing/down.sh' EXIT
export SEEDFOLD_REQUIRE_SLURM=1 SEEDFOLD_REQUIRE_BROWSER=1 MLFLOW_DISABLE_TELEMETRY=true
# Page faults are expensive on these VMs (docs/DESIGN.md §5).
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
# GPU tests run where torch sees a CUDA device, and are deselected elsewhere (they would only skip).
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    marker="gpu or not gpu"
else
    marker="not gpu"
fi
[ "${SEEDFOLD_TEST_FAST:-0}" = 1 ] && marker="($marker) and not slow"
"$PY" -m pytest -m "$marker" --timeout=900 --durations=25 "$@"
