"""Every kernel launch goes through ``launch.launch``: on the tensors' CUDA device (a model on cuda:1 without
``set_device`` must not launch on device 0), with the layouts the kernels read in place, recorded by
``capture_launches`` for the compile check."""

import ast
from pathlib import Path

import pytest
import torch
from test_triton_triangle_attention import compare_with_reference, make_inputs

import models.kernels.launch_config as launch_config
from models.kernels import triangle_attention
from models.kernels.layouts import split_heads

triton = pytest.importorskip("triton")
from models.kernels import gated_triton, vanilla_triton  # noqa: E402
from models.kernels.launch import capture_launches, device_guard, launch  # noqa: E402

KERNELS = Path(launch_config.__file__).parent


def _subscript_calls(path: Path) -> list[str]:
    """``x[...](...)`` calls in a file: how a Triton kernel is launched directly."""
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript)]  # fmt: skip


def test_no_kernel_is_launched_outside_launch():
    """A direct ``kernel[grid](...)`` would run on the current CUDA device, whatever the tensors' device."""
    direct = [call for path in KERNELS.glob("*.py") if path.name != "launch.py" for call in _subscript_calls(path)]
    assert direct == []
    assert len(_subscript_calls(KERNELS / "launch.py")) == 1  # the guarded one


def test_device_guard_makes_the_tensors_device_current():
    guard = device_guard(torch.device("cuda", 1))
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1
    assert not isinstance(device_guard(torch.device("cpu")), torch.cuda.device)


def test_launch_refuses_tensors_on_two_devices():
    with pytest.raises(ValueError, match="one device"), capture_launches():
        launch(vanilla_triton._fwd_kernel, (1,), torch.zeros(1), torch.zeros(1, device="meta"))


@pytest.mark.parametrize(("variant", "host"), [("vanilla", vanilla_triton), ("gated", gated_triton)])
def test_capture_records_every_kernel_with_the_model_layouts_read_in_place(variant, host):
    """Forward and backward launch 4 kernels, each on the tensors' device; q, k, v from ``split_heads`` are
    passed as they are (no copy: row stride H·D, not D), the module's permuted bias is copied once into rows
    along keys at unit stride, padded to a multiple of 16 (n = 21 → 32)."""
    n, heads, d = 21, 2, 16
    z, weight = torch.randn(1, 3, n, 8), torch.randn(3 * heads * d, 8)
    q, k, v = split_heads(z, weight, heads, d)
    bias = torch.randn(1, n, n, heads).permute(0, 3, 1, 2)
    mask = torch.ones(1, 3, n, dtype=torch.bool)
    with capture_launches() as launches:
        if variant == "vanilla":
            out, lse = host.vanilla_forward(q, k, v, bias, mask, d**-0.5)
            host.vanilla_backward(torch.ones_like(out), q, k, v, bias, mask, out, lse, d**-0.5)
        else:
            out = host.gated_forward(q, k, v, bias, mask, d**-0.5)
            host.gated_backward(torch.ones_like(out), q, k, v, bias, mask, d**-0.5)
    names = [launch.kernel.fn.__name__ if hasattr(launch.kernel, "fn") else launch.kernel.__name__
             for launch in launches]  # fmt: skip
    reduction = "_dbias_kernel" if variant == "vanilla" else "_dgate_kernel"
    assert names == ["_fwd_kernel", "_dkdv_kernel", "_dq_kernel", reduction]
    for captured in launches:
        assert captured.device == torch.device("cpu")
        assert captured.args[0] is q and captured.args[1] is k and captured.args[2] is v
    for captured in launches[:3] if variant == "gated" else launches:  # the gate gradient does not read the gate
        passed_bias = captured.args[3]
        assert passed_bias.stride()[-2:] == (32, 1) and torch.equal(passed_bias, bias)
    assert q.stride()[-2:] == (heads * d, 1)


@pytest.mark.skipif(not launch_config.triton_can_run(torch.device("cpu")), reason="needs TRITON_INTERPRET=1")
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_model_layouts_and_permuted_bias_match_reference(variant):
    """The layouts above, run: output and gradients equal the reference's (fp32, 1e-4 of the scale)."""
    q, k, v, _, mask = make_inputs(n_rows=3, n_heads=2, n=21, d=16)
    z, weight = torch.randn(1, 3, 21, 8), torch.randn(3 * 2 * 16, 8)
    q, k, v = split_heads(z, weight, 2, 16)
    bias = torch.randn(1, 21, 21, 2).permute(0, 3, 1, 2)
    compare_with_reference(variant, q, k, v, bias, mask)


def test_int32_tile_offsets_copy_a_plane_that_would_wrap():
    """A (J, D) plane whose in-tile offsets pass 2**31 is copied to a contiguous one (int32 cannot wrap)."""
    wide = torch.empty_strided((1, 1, 1, 4, 16), (1, 1, 1, 2**30, 1), device="meta")
    assert not launch_config.in_tile_safe(wide)
    assert launch_config.kernel_input(wide).is_contiguous()
    view = torch.empty(1, 2, 5, 3, 16).transpose(2, 3)  # dense, in range: read in place
    assert launch_config.kernel_input(view) is view


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_tensors_on_the_second_gpu_while_the_first_is_current(variant):
    """cuda:1 tensors, cuda:0 current (``harness predict --device cuda:1``): the kernels run on cuda:1."""
    torch.cuda.set_device(0)
    q, k, v, bias, mask = (t.to("cuda:1") for t in make_inputs(n_rows=4, n_heads=2, n=100, d=32))
    got = triangle_attention(q, k, v, bias, mask, variant=variant, impl="triton")
    want = triangle_attention(q, k, v, bias, mask, variant=variant, impl="torch")
    assert got.device == torch.device("cuda", 1)
    assert (got - want).abs().max() <= 1e-2 * want.abs().max()
