"""The in-program glibc malloc setting: which mode is in effect, and that it removes the page faults of
repeatedly allocating large tensors (a fresh process each, as a user's `harness` command is)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, resource, torch
from harness.allocator import tune_allocator
state = tune_allocator()
for _ in range(3):  # the heap settles within two rounds; the third is the steady state of a training loop
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(6):
        t = torch.ones(16 * 2**20)  # 64 MiB, every page touched
        del t
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"state": state, "faults": faults}))
"""


def probe(**env_changes) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | {"PYTHONPATH": str(ROOT)}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")


def test_tuned_by_default_on_a_cpu_machine_and_page_faults_drop():
    from harness.allocator import has_nvidia_gpu

    if has_nvidia_gpu():
        pytest.skip("auto leaves the allocator alone on GPU machines")
    tuned, off = probe(), probe(SEEDFOLD_MALLOC="off")
    assert (tuned["state"], off["state"]) == ("tuned", "off")
    # 6 × 64 MiB touched = 6 × 16,384 pages: glibc's default mmaps and unmaps each tensor and faults every page
    # again, in every round; tuned, the heap keeps the pages and the steady state faults (almost) none.
    assert off["faults"] > 5 * 16_384
    assert tuned["faults"] < 1_000


def test_user_environment_wins_and_bad_values_are_refused():
    assert probe(MALLOC_MMAP_MAX_="0", SEEDFOLD_MALLOC="on")["state"] == "env"
    env = os.environ | {"PYTHONPATH": str(ROOT), "SEEDFOLD_MALLOC": "sometimes"}
    bad = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "SEEDFOLD_MALLOC='sometimes'; expected auto, on or off" in bad.stderr


def test_runtime_params_record_kernel_and_allocator():
    from harness.config import RunConfig
    from harness.tracking import names
    from harness.train.run import runtime_params

    config = RunConfig.model_validate({"name": "t", "model": {"preset": "base", "miniature": True},
                                       "train": {"accelerator": "cpu"}})  # fmt: skip
    got = runtime_params(config)
    assert got[names.PARAM_KERNEL_TRIANGLE_ATTENTION] == "torch"
    assert got[names.PARAM_KERNEL_SELF_CHECK] == "not run: auto uses the PyTorch path on cpu"
    assert got[names.PARAM_CPU_MALLOC] in {"tuned", "env", "off"}
