#!/usr/bin/env bash
# The main job on its embedded default: install, then a miniature width-vs-depth sweep on CPU with the local
# executor, MLflow in runs/mlflow.db and the bundled real structures. Then: `harness ui` to browse the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install.sh
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
"$PY" -m harness sweep sweeps/width_vs_depth.yaml --profile mini --executor local "$@"
"$PY" -m harness report sweeps/width_vs_depth.yaml --plot scaling --runs-dir runs --out reports/width_vs_depth
echo "Browse the runs: harness ui   (then open the printed URL); the report: reports/width_vs_depth/report.html"
