"""``benchmarks/kernel_compile.py``: the kernels compile for sm_80 and sm_90 on this CPU-only machine with zero
spills, within shared memory, on tensor cores and with bf16 kept in every dot, for every configuration the
tuner may choose at the model's setting (bf16, head dim 32, mask); a failing compile fails it.
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


def test_main_exits_1_and_names_each_failing_compile(monkeypatch, capsys):
    """The exit status CI reads: 1 when any row fails the check, each failure on its own FAIL line. The rows
    stand in for compiles (a real spilling compile takes minutes on this machine; the production test above
    compiles for real)."""
    ok = kernel_compile.Row(kernel="gated.dq_kernel", arch=80, dtype="bf16", head_dim=32, mask=True, n=384,
                            precision="tf32", block_m=64, block_n=64, num_warps=4, num_stages=3, registers=146,
                            spill_stores=0, spill_loads=0, stack=0, smem=36_864, smem_limit=166_912,
                            tensor_cores="mma", dots=3, dot_inputs="bf16")  # fmt: skip
    spilling = kernel_compile.Row(**{**ok.__dict__, "registers": 255, "spill_stores": 8, "spill_loads": 8, "stack": 8})
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(kernel_compile, "run", lambda spec, archs, jobs, config=None: [ok, spilling])
    assert kernel_compile.main(["--arch", "80", "--production"]) == 1
    out = capsys.readouterr().out
    assert "FAIL gated.dq_kernel sm_80 bf16 D=32 n=384: spills 8 B stores / 8 B loads, stack 8 B" in out
    assert "2 compiles, 1 failing the check; spill bytes in all: 16" in out
    monkeypatch.setattr(kernel_compile, "run", lambda spec, archs, jobs, config=None: [ok])
    assert kernel_compile.main(["--arch", "80", "--production"]) == 0


def test_refuses_to_run_under_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(SystemExit) as err:
        kernel_compile.main(["--arch", "90"])
    assert err.value.code == 2
