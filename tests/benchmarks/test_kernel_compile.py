"""``benchmarks/kernel_compile.py``: the kernels compile for sm_80 and sm_90 on this CPU-only machine with zero
spills, within shared memory, on tensor cores and with bf16 kept in every dot, for every configuration the
tuner may choose at the model's setting (bf16, head dim 32, mask); a configuration that spills fails it.
The compiles run in a subprocess without TRITON_INTERPRET (the interpreter replaces the kernels)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import kernel_compile  # noqa: E402

pytest.importorskip("triton")

PTXAS = """ptxas info    : 11 bytes gmem
ptxas info    : Compiling entry function '_fwd_kernel' for 'sm_80'
ptxas info    : Function properties for _fwd_kernel
    392 bytes stack frame, 400 bytes spill stores, 388 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 536 bytes cmem[0]
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "benchmarks/kernel_compile.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_parse_ptxas_report():
    assert kernel_compile.parse_ptxas(PTXAS) == {"registers": 255, "spill_stores": 400, "spill_loads": 388,
                                                 "stack": 392}  # fmt: skip


def test_dot_types_and_tensor_core_instructions():
    ttir = ("%a = tt.dot %q, %k, %c, inputPrecision = tf32 : tensor<64x32xf32> * tensor<32x64xf32> -> x\n"
            "%b = tt.dot %p, %v, %c, inputPrecision = tf32 : tensor<64x64xbf16> * tensor<64x32xbf16> -> x\n")
    assert kernel_compile.dot_input_types(ttir) == "bf16+fp32"
    assert kernel_compile.tensor_core_ops("wgmma.mma_async.sync.aligned\\n mma.sync.aligned") == ("wgmma+mma", 2)
    assert kernel_compile.tensor_core_ops("fma.rn.f32") == ("", 0)


def test_a_row_fails_on_spills_smem_missing_tensor_cores_or_promoted_dots():
    ok = kernel_compile.Row(kernel="vanilla.fwd_kernel", arch=90, dtype="bf16", head_dim=32, mask=True, n=200,
                            precision="tf32", block_m=64, block_n=64, num_warps=4, num_stages=2, registers=141,
                            spill_stores=0, spill_loads=0, stack=0, smem=28_672, smem_limit=232_448,
                            tensor_cores="wgmma", dots=2, dot_inputs="bf16")  # fmt: skip
    assert ok.problems() == []
    bad = kernel_compile.Row(**{**ok.__dict__, "spill_stores": 8, "spill_loads": 8, "stack": 8, "smem": 240_000,
                                "tensor_cores": "", "dot_inputs": "bf16+fp32"})  # fmt: skip
    assert bad.problems() == [
        "spills 8 B stores / 8 B loads, stack 8 B", "shared memory 240000 B > 232448 B",
        "tl.dot without tensor-core instructions", "bf16 kernel multiplies bf16+fp32 tiles",
    ]  # fmt: skip


def test_production_configurations_compile_for_sm80_and_sm90_without_spills(tmp_path):
    """Every tuner candidate at bf16, D = 32, with mask, n = 200 (not a multiple of 16: the harder
    specialisation), both variants, both targets."""
    done = _run("--arch", "80", "90", "--production", "--n", "200", "--mask", "yes", "--jobs", "2",
                "--json", str(tmp_path / "r.json"))  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads((tmp_path / "r.json").read_text())
    from models.kernels.launch_config import CANDIDATES

    configs = CANDIDATES[("d<=64", "16-bit")]
    assert len(rows) == 2 * 4 * 2 * len(configs)  # variants × kernels × archs × configurations
    assert {r["arch"] for r in rows} == {80, 90}
    for r in rows:
        assert r["spill_stores"] == r["spill_loads"] == r["stack"] == 0, r
        assert r["smem"] <= r["smem_limit"] and r["dot_inputs"] == "bf16", r
        assert r["tensor_cores"] == ("wgmma" if r["arch"] == 90 else "mma"), r
    assert "0 failing the check; spill bytes in all: 0" in done.stdout


def test_a_spilling_configuration_fails_the_check():
    """128×128 tiles of fp32 at head dim 128 with 4 warps cannot stay in registers: exit 1, the spill named."""
    done = _run("--arch", "80", "--config", "128", "128", "4", "2", "--dtype", "fp32", "--head-dim", "128",
                "--n", "200", "--variant", "vanilla", "--mask", "yes", "--production")  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FAIL vanilla.fwd_kernel sm_80 fp32 D=128 n=200: spills" in done.stdout
