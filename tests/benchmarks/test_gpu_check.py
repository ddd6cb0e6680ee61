"""``benchmarks/gpu_check.sh`` in its dry mode: every section runs on CPU (kernels under the Triton
interpreter, the miniature trained with kernel_impl=triton and torch) and the report holds their values."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402


@pytest.mark.slow
def test_dry_run_writes_measured_json_and_markdown(tmp_path):
    env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHON": sys.executable}
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(tmp_path), "--dry"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=2400)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["dry"] is True and result["tests"] == {"ran": False}
    rows = result["kernels"]["rows"]
    assert {(r["variant"], r["impl"]) for r in rows} == {
        ("vanilla", "triton"), ("vanilla", "torch"), ("gated", "triton"), ("gated", "torch"), ("additive", "torch")
    }
    assert all(r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > r["fwd_ms"] * 0.5 for r in rows)
    assert result["trifast"]["rows"][0].get("skipped") or result["trifast"]["rows"][0]["impl"] == "trifast"
    assert result["cueq"]["rows"][0]["skipped"].startswith(("cuequivariance_torch is not installed", "its kernels"))
    (train,) = result["train"]["rows"]
    assert len(train["loss_triton"]) == len(train["loss_torch"]) == train["steps"] == 2
    assert train["params_triton"]["kernel_triangle_attention"] == "triton (interpreter)"
    assert train["max_rel_diff"] < 1e-4  # the interpreter's kernels give the reference's loss curve
    md = (tmp_path / "gpu_check.md").read_text()
    assert md.startswith("# GPU check — DRY RUN")
    assert md.count("| vanilla | triton | 16 | 2 |") == 1


def test_report_names_sections_that_did_not_finish(tmp_path):
    (tmp_path / "trifast.json").write_text(json.dumps({"rows": [{"impl": "trifast", "skipped": "needs CUDA"}]}))
    row = {"variant": "vanilla", "impl": "triton", "n": 256, "heads": 4, "fwd_ms": 1.5, "fwd_bwd_ms": 4.25,
           "fwd_peak_mib": 10.0, "fwd_bwd_peak_mib": "OOM"}  # fmt: skip
    (tmp_path / "kernels.json").write_text(json.dumps({"env": {"device": "X"}, "rows": [row]}))
    (tmp_path / "kernels.exit").write_text("124\n")
    result = gpu_check.report(tmp_path, dry=False)
    assert "missing" in result["train"] and "time limit" in result["kernels"]["incomplete"]
    assert json.loads((tmp_path / "gpu_check.json").read_text())["kernels"]["incomplete"]
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| vanilla | triton | 256 | 4 | 1.50 | 4.25 | 10.00 | OOM |" in md
    assert "kernels: INCOMPLETE, exit 124 (time limit)" in md and "trifast: skipped (needs CUDA)" in md
    assert "train: section did not finish" in md and "cueq: section did not finish" in md


def test_report_prints_measured_over_ideal_and_cueq_rows(tmp_path):
    """Rows with the roofline's ideal times get measured / ideal; cuEquivariance's rows sit beside ours."""
    row = {"variant": "vanilla", "impl": "triton", "n": 384, "heads": 4, "fwd_ms": 0.29, "fwd_bwd_ms": 1.79,
           "fwd_peak_mib": 10.0, "fwd_bwd_peak_mib": 20.0, "ideal_fwd_ms": 0.058, "ideal_fwd_bwd_ms": 0.179}
    cueq = row | {"impl": "cueq", "fwd_ms": 0.116}
    (tmp_path / "kernels.json").write_text(json.dumps({"env": {"device": "NVIDIA H100"}, "rows": [row]}))
    (tmp_path / "cueq.json").write_text(json.dumps({"rows": [cueq]}))
    gpu_check.report(tmp_path, dry=False)
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| vanilla | triton | 384 | 4 | 0.29 | 1.79 | 10.00 | 20.00 | 5.0× | 10.0× |" in md
    assert "| vanilla | cueq | 384 | 4 | 0.12 | 1.79 | 10.00 | 20.00 | 2.0× | 10.0× |" in md
