#!/usr/bin/env bash
# The one-shot check for the first GPU (BENCHMARKS.md, "GPU check"): installs the project, runs the GPU tests,
# benchmarks the triangle-attention kernels against the PyTorch path, trifast and cuEquivariance (each time
# also as measured / the roofline's ideal), trains a miniature with the
# Triton and the PyTorch path, and writes OUTDIR/gpu_check.json and OUTDIR/gpu_check.md. Each section has its
# own time limit so the whole stays under 8 minutes; a section that runs over is reported as missing.
# Usage: bash benchmarks/gpu_check.sh OUTDIR [--dry]   (--dry, or SEEDFOLD_GPU_CHECK_DRY=1: CPU, tiny sizes,
# Triton interpreter, no installs: what tests/benchmarks/test_gpu_check.py runs)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR [--dry]}
DRY=${SEEDFOLD_GPU_CHECK_DRY:-0}
[ "${2:-}" = "--dry" ] && DRY=1
PY=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} MLFLOW_DISABLE_TELEMETRY=true
flag=()
if [ "$DRY" = 1 ]; then
    flag=(--dry)
    export TRITON_INTERPRET=1
else
    bash scripts/install.sh || exit 1
    "$PY" -m pip install --quiet trifast || echo "trifast could not be installed; its section will say so"
    "$PY" -m pip install --quiet cuequivariance-torch cuequivariance-ops-torch-cu12 \
        || echo "cuEquivariance could not be installed; its section will say so"
    timeout 120 "$PY" -m pytest -m gpu tests/models/kernels -q -p no:cacheprovider \
        --junitxml="$OUT/gpu_tests.xml" >"$OUT/gpu_tests.log" 2>&1
    echo "GPU tests: exit $? (log: $OUT/gpu_tests.log)"
fi
limits="kernels:120 trifast:45 cueq:45 train:90"
[ "$DRY" = 1 ] && limits="kernels:900 trifast:900 cueq:900 train:900"  # the interpreter on a busy CPU: no GPU budget
for section in $limits; do
    name=${section%%:*}
    timeout "${section##*:}" "$PY" benchmarks/gpu_check.py "$name" --out "$OUT" "${flag[@]}" \
        >"$OUT/$name.log" 2>&1
    code=$?
    echo "$code" >"$OUT/$name.exit"
    echo "$name: exit $code (log: $OUT/$name.log)"
done
"$PY" benchmarks/gpu_check.py report --out "$OUT" "${flag[@]}"
