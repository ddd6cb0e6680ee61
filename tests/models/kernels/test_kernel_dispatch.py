"""``triangle_attention``'s dispatch, input errors, and the custom ops' contracts (opcheck, torch.compile,
FLOP counting); gradcheck of the reference path in fp64."""

import pytest
import torch
from naive_formulas import naive_triangle_attention
from torch.utils.flop_counter import FlopCounterMode

import models.kernels.launch_config as launch_config
import models.kernels.ops as ops
from models.kernels import KernelUnavailableError, TriangleAttentionInputError, triangle_attention
from models.triangle_attention_ref import triangle_attention_torch

needs_interpreter = pytest.mark.skipif(
    not launch_config.triton_can_run(torch.device("cpu")), reason="needs triton with TRITON_INTERPRET=1"
)


def make_inputs(b=1, i=3, h=2, n=12, d=16, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, i, h, n, d, generator=g, dtype=dtype) for _ in range(3))
    bias = torch.randn(b, h, n, n, generator=g, dtype=dtype)
    mask = torch.ones(b, i, n, dtype=torch.bool)
    mask[..., -2:] = False
    mask[:, -1] = False  # one row with every key padded
    return q, k, v, bias, mask


@pytest.mark.parametrize("variant", ["vanilla", "additive", "gated"])
def test_auto_on_cpu_runs_the_reference_and_never_the_kernels(variant, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("auto picked the Triton path for CPU tensors")

    monkeypatch.setattr(ops, "vanilla_attention", forbidden)
    monkeypatch.setattr(ops, "gated_attention", forbidden)
    q, k, v, bias, mask = make_inputs()
    got = triangle_attention(q, k, v, bias, mask, variant=variant)
    assert torch.equal(got, triangle_attention_torch(q, k, v, bias, mask, variant=variant))


@pytest.mark.parametrize("activation", ["relu", "identity", "softplus"])
@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_additive_every_impl_matches_per_row_formula(activation, impl):
    """The additive form has no kernel: every impl takes the right-product path, checked against the loops."""
    q, k, v, bias, mask = make_inputs(dtype=torch.float64)
    got = triangle_attention(q, k, v, bias, mask, variant="additive", bias_activation=activation, impl=impl)
    want = naive_triangle_attention(q, k, v, bias, mask, "additive", activation)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("variant", ["vanilla", "additive", "gated"])
def test_reference_gradcheck_fp64(variant):
    q, k, v, bias, mask = make_inputs(b=1, i=2, h=1, n=5, d=4, dtype=torch.float64)
    mask[0, 0, 1] = False
    leaves = tuple(t.requires_grad_(True) for t in (q, k, v, bias))
    assert torch.autograd.gradcheck(
        lambda *t: triangle_attention(*t, mask, variant=variant, impl="torch"), leaves, eps=1e-6, atol=1e-7
    )


def test_mask_none_means_no_padding_on_the_reference_path():
    q, k, v, bias, _ = make_inputs()
    ones = torch.ones(1, 3, 12, dtype=torch.bool)
    for variant in ("vanilla", "additive", "gated"):
        a = triangle_attention(q, k, v, bias, None, variant=variant, impl="torch")
        assert torch.equal(a, triangle_attention(q, k, v, bias, ones, variant=variant, impl="torch"))


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda a: a.update(bias=a["bias"][..., :-1]), "bias"),
        (lambda a: a.update(k=a["k"][:, :, :, :-1]), "k shape"),
        (lambda a: a.update(v=a["v"].double()), "v is torch.float64"),
        (lambda a: a.update(mask=a["mask"].float()), "mask must be a bool"),
        (lambda a: a.update(q=a["q"][0]), "q must be (B, I, H, J, D)"),
        (lambda a: a.update(variant="cubic"), "variant='cubic'"),
        (lambda a: a.update(bias_activation="tanh"), "bias_activation='tanh'"),
        (lambda a: a.update(impl="cuda"), "impl='cuda'"),
    ],
)
def test_bad_inputs_raise_one_typed_error_naming_the_argument(change, needle):
    q, k, v, bias, mask = make_inputs()
    args = dict(q=q, k=k, v=v, bias=bias, mask=mask, variant="vanilla", bias_activation="relu", impl="torch")
    change(args)
    with pytest.raises(TriangleAttentionInputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        triangle_attention(
            args["q"], args["k"], args["v"], args["bias"], args["mask"],
            variant=args["variant"], bias_activation=args["bias_activation"], impl=args["impl"],
        )  # fmt: skip


def test_triton_on_cpu_without_interpreter_raises_kernel_unavailable(monkeypatch):
    import models.kernels.dispatch as dispatch

    monkeypatch.setattr(launch_config, "INTERPRETING", False)
    monkeypatch.setattr(dispatch, "INTERPRETING", False)
    q, k, v, bias, mask = make_inputs()
    with pytest.raises(KernelUnavailableError, match="TRITON_INTERPRET=1"):
        triangle_attention(q, k, v, bias, mask, variant="gated", impl="triton")


@needs_interpreter
def test_triton_rejects_fp64():
    q, k, v, bias, mask = make_inputs(dtype=torch.float64)
    with pytest.raises(TriangleAttentionInputError, match="float64"):
        triangle_attention(q, k, v, bias, mask, variant="vanilla", impl="triton")


@needs_interpreter
@pytest.mark.parametrize("op_name", ["tri_att_vanilla", "tri_att_gated"])
def test_custom_ops_pass_opcheck(op_name):
    q, k, v, bias, mask = make_inputs(i=2, h=1, n=10)
    if op_name == "tri_att_gated":
        bias = torch.sigmoid(bias)
    args = tuple(t.requires_grad_(True) for t in (q, k, v, bias)) + (mask, 16**-0.5)
    torch.library.opcheck(getattr(torch.ops.seedfold, op_name), args)


@needs_interpreter
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_compiles_fullgraph_and_matches_eager(variant):
    """The custom ops trace into one graph (aot_eager keeps the test free of a C++ compiler)."""
    q, k, v, bias, mask = make_inputs(i=2, h=1, n=10)

    def loss(q, k, v, bias):
        return triangle_attention(q, k, v, bias, mask, variant=variant, impl="triton").square().sum()

    leaves = [t.requires_grad_(True) for t in (q, k, v, bias)]
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    got = torch.autograd.grad(compiled(*leaves), leaves)
    want = torch.autograd.grad(loss(*leaves), leaves)
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6)


@needs_interpreter
@pytest.mark.parametrize("variant", ["vanilla", "gated"])
def test_flop_counter_matches_the_reference_count(variant):
    """4·B·I·H·J²·D forward, twice that backward: the reference's einsums, counted by the same mode."""
    q, k, v, bias, mask = make_inputs(b=2, i=3, h=2, n=12, d=16)
    expected_forward = 4 * 2 * 3 * 2 * 12 * 12 * 16

    def count(impl):
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v, bias)]
        with FlopCounterMode(display=False) as counter:
            out = triangle_attention(*leaves, mask, variant=variant, impl=impl)
            forward = counter.get_total_flops()
            out.sum().backward()
        return forward, counter.get_total_flops()

    kernel, reference = count("triton"), count("torch")
    assert kernel == reference
    assert kernel == (expected_forward, 3 * expected_forward)
