"""The Triton requirement accepts the Triton every supported torch pins (a CUDA torch keeps its own), and the
kernels check the same range at import: outside it, ``auto`` uses PyTorch and ``triton`` says what to install."""

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from test_kernel_dispatch import make_inputs

import models.kernels.dispatch as dispatch
from models.kernels import KernelUnavailableError, launch_config, triangle_attention

ROOT = Path(__file__).resolve().parents[3]
# The Triton each CUDA torch release pins (its wheel's requirement), oldest supported to newest.
TORCH_PINS = {"2.4": "3.0.0", "2.5": "3.1.0", "2.6": "3.2.0", "2.7": "3.3.1", "2.8": "3.4.0", "2.9": "3.5.1",
              "2.14": "3.8.0"}  # fmt: skip


def _requirement(name: str) -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (req,) = [Requirement(d) for d in deps if Requirement(d).name == name]
    return req


@pytest.mark.parametrize(("torch_minor", "triton"), sorted(TORCH_PINS.items()))
def test_requirement_accepts_the_triton_each_supported_torch_pins(torch_minor, triton):
    assert _requirement("torch").specifier.contains(torch_minor + ".0")
    assert _requirement("triton").specifier.contains(triton)


def test_requirement_and_the_import_check_name_the_same_range():
    (lo, hi) = launch_config.TRITON_RANGE
    spec = _requirement("triton").specifier
    assert str(spec) in (f">={lo[0]}.{lo[1]},<{hi[0]}.{hi[1]}", f"<{hi[0]}.{hi[1]},>={lo[0]}.{lo[1]}")


@pytest.fixture
def old_triton(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "2.3.1" if name == "triton" else real(name))


def test_an_unsupported_triton_is_named_with_what_to_install(old_triton):
    assert launch_config.triton_version_problem() == (
        "triton 2.3.1 is installed; the kernels need triton >= 3.0, < 3.9 (the Triton of a CUDA torch 2.4 … 2.14 "
        "build, or pip install 'triton>=3.0,<3.9')"
    )
    assert not launch_config.triton_importable()


def test_with_an_unsupported_triton_auto_uses_torch_and_triton_raises(old_triton, monkeypatch):
    monkeypatch.setattr(dispatch, "triton_can_run", lambda device: False)
    q, k, v, bias, mask = make_inputs()
    assert not dispatch.auto_eligible(q.cuda() if torch.cuda.is_available() else q)
    with pytest.raises(KernelUnavailableError, match="triton 2.3.1 is installed; the kernels need triton >= 3.0"):
        triangle_attention(q, k, v, bias, mask, variant="gated", impl="triton")
