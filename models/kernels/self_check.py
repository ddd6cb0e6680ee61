"""One-time parity self-check of the triangle-attention kernels before ``impl="auto"`` trusts them on a device.

The kernels are verified under the CPU interpreter, but a GPU compiles them with its own code generator, so the
first use per (device, dtype, head dim, variant) runs them on a problem shaped like training and keeps the
Triton path only if every output and gradient agrees with the PyTorch reference; otherwise ``auto`` uses the
reference and logs one warning. The problem exercises what a run then trusts:

- n = 150 keys: three 64-wide tiles with a ragged last one (the multi-tile softmax rescaling, both gradient
  loops, the dQ running sum over key tiles), a mask with padded keys, a hole and a fully padded row;
- the model's layouts: q, k, v from ``layouts.split_heads``, the bias permuted from a (B, J, J, H) projection,
  the mask a transposed view (ending-node attention), all through the dispatcher as the module calls it;
- every launch configuration the tuner may choose (``launch_config.candidates``: tiles, warps, pipeline
  depth), each forced in turn;
- a float64 reference on the same rounded inputs, autocast off (the check may first run inside a bf16 forward),
  and for fp32 inputs both dot precisions: exact (``ieee``) at 1e-4 of the scale, TF32 at TF32's 1e-2.

One cache key per (device with its index, dtype, head dim, variant): ``kernel_choice`` at run start and the
dispatcher inside the forward hit the same entry, so the check runs once and what a run records is what its
kernels do. ``kernel_choice`` reports the decision for a run's params (harness/train/run.py).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import astuple, dataclass

import torch

log = logging.getLogger(__name__)

N_CHECK = 150
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 3e-2, torch.float16: 3e-2}
TF32_TOLERANCE = 1e-2
TRIMUL_TOLERANCE = {torch.float32: 1e-2, torch.bfloat16: 5e-2, torch.float16: 5e-2}  # cuEquivariance's


@dataclass(frozen=True)
class SelfCheck:
    """Result of one self-check: ``passed``, the worst error relative to the reference's scale, and why."""

    passed: bool
    max_rel_error: float | None
    detail: str


_results: dict[tuple, SelfCheck] = {}


def check_key(variant: str, device: str | torch.device, dtype: torch.dtype, head_dim: int) -> tuple:
    """The cache key: "cuda" and "cuda:<current device>" are one device."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return (str(device), dtype, head_dim, variant)


def _problem(device: torch.device, dtype: torch.dtype, head_dim: int, seed: int = 0):
    """q, k, v (1, 3, 2, 150, D) as ``split_heads`` makes them, a permuted bias (1, 2, 150, 150), the mask of
    ending-node attention (a transposed (1, 150, 150) pair mask, rows 0–2), and dO, all rounded to ``dtype``."""
    from models.kernels.layouts import split_heads

    g = torch.Generator().manual_seed(seed)
    n, rows, heads, width = N_CHECK, 3, 2, 16
    z = torch.randn(1, rows, n, width, generator=g)
    weight = torch.randn(3 * heads * head_dim, width, generator=g) * width**-0.5
    bias = torch.randn(1, n, n, heads, generator=g)
    pair_mask = torch.ones(1, n, n, dtype=torch.bool)
    pair_mask[:, n - 9 :, :] = False  # padded keys (key j of row i is pair_mask[:, j, i])
    pair_mask[:, 5, 1] = False  # a hole in row 1
    pair_mask[:, :, 2] = False  # row 2 entirely padded
    grad_out = torch.randn(1, rows, heads, n, head_dim, generator=g)
    to = dict(device=device, dtype=dtype)
    q, k, v = split_heads(z.to(**to), weight.to(**to), heads, head_dim)
    mask = pair_mask.to(device).transpose(1, 2)[:, :rows]
    return [q, k, v, bias.to(**to).permute(0, 3, 1, 2)], mask, grad_out.to(**to)


def _outputs(fn, inputs, grad_out) -> list[torch.Tensor]:
    leaves = [t.detach().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    return [out.detach(), *torch.autograd.grad(out, leaves, grad_out)]


def _worst(got: list[torch.Tensor], want: list[torch.Tensor]) -> tuple[float, str]:
    """The largest error relative to the reference's scale over output and gradients, and where; inf for a
    non-finite value."""
    worst, where = 0.0, ""
    for name, a, e in zip(("out", "dq", "dk", "dv", "dbias"), got, want, strict=True):
        if not torch.isfinite(a).all():
            return float("inf"), f"{name} non-finite"
        rel = ((a.double() - e).abs().max() / e.abs().max().clamp_min(1e-12)).item()
        if rel > worst:
            worst, where = rel, name
    return worst, where


def run_self_check(variant: str, device: torch.device, dtype: torch.dtype, head_dim: int) -> SelfCheck:
    """Kernels vs the float64 reference for output and the four gradients, every candidate configuration.
    ``variant`` "cueq:vanilla" checks cuEquivariance's kernels instead (its triangle multiplication too)."""
    from models.kernels.dispatch import triangle_attention
    from models.kernels.launch_config import Tiles, candidates, tf32_allowed, tile_override
    from models.triangle_attention_ref import triangle_attention_torch

    impl, _, variant = variant.rpartition(":")
    impl = impl or "triton"
    device = torch.device(device)
    with torch.autocast(device.type, enabled=False):
        tensors, mask, grad_out = _problem(device, dtype, head_dim)

    def kernel(q, k, v, bias):
        return triangle_attention(q, k, v, bias, mask, variant=variant, impl=impl)

    def reference(q, k, v, bias):
        return triangle_attention_torch(q, k, v, bias, mask, variant=variant)

    precisions = [(False, TOLERANCE[dtype])] + ([(True, TF32_TOLERANCE)] if dtype == torch.float32 else [])
    worst, detail = 0.0, ""
    with torch.enable_grad(), torch.autocast(device.type, enabled=False):
        want = _outputs(reference, [t.double() for t in tensors], grad_out.double())
        configs = candidates(head_dim, dtype) if impl == "triton" else [None]
        for tiles in configs:
            for tf32, tol in precisions:
                label = f"{tiles or impl}{', tf32' if tf32 else ''}"
                override = tile_override(*astuple(tiles)) if isinstance(tiles, Tiles) else contextlib.nullcontext()
                try:
                    with override, tf32_allowed(tf32 or dtype != torch.float32):
                        got = _outputs(kernel, tensors, grad_out)
                except Exception as exc:  # a compile or launch failure is a failed check, reported, not a crash
                    return SelfCheck(False, None, f"kernel raised {type(exc).__name__} at {label}: {exc}")
                err, where = _worst(got, want)
                if err > tol:
                    return SelfCheck(False, err, f"max error {err:.2g} ({where}, {label}) > {tol:g} of scale")
                if err >= worst:
                    worst, detail = err, f"{where}, {label}"
    if impl == "cueq":
        from models.kernels.cueq import trimul_parity

        err = trimul_parity(device, dtype)
        if err > TRIMUL_TOLERANCE[dtype]:
            return SelfCheck(False, err, f"triangle multiplication max error {err:.2g} > {TRIMUL_TOLERANCE[dtype]:g}")
    return SelfCheck(True, worst, f"max error {worst:.2g} ({detail}) within {TOLERANCE[dtype]:g} of scale")


def self_check(variant: str, device: str | torch.device, dtype: torch.dtype, head_dim: int) -> SelfCheck:
    """The cached result for this (device, dtype, head dim, variant), running the check the first time."""
    key = check_key(variant, device, dtype, head_dim)
    if key not in _results:
        result = run_self_check(variant, torch.device(key[0]), dtype, head_dim)
        _results[key] = result
        if not result.passed:
            log.warning(
                "Triton %s triangle attention failed its self-check on %s (%s, head dim %d): %s; "
                "impl='auto' uses the PyTorch path there", variant, key[0], dtype, head_dim, result.detail,
            )  # fmt: skip
    return _results[key]


def cached_results() -> dict[tuple, SelfCheck]:
    """Every self-check run in this process, by (device, dtype, head dim, variant)."""
    return dict(_results)


def clear() -> None:
    """Forget cached results (tests)."""
    _results.clear()


def kernel_choice(
    impl: str, variant: str, device: str | torch.device, dtypes: torch.dtype | tuple[torch.dtype, ...], head_dim: int
) -> dict:
    """What triangle attention will run for a model of ``variant``/``impl`` on ``device`` for each dtype it sees
    (the trunk's and the confidence head's autocast dtypes), for a run's record:
    {"kernel": "triton" | "torch" | ..., "self_check": why / the checks' results}. On CUDA with ``auto`` (or
    ``triton``) this runs the self-checks now, before the first step and outside autocast; the dispatcher then
    finds the same cached results, so the record is what runs."""
    dtypes = tuple(dict.fromkeys((dtypes,) if isinstance(dtypes, torch.dtype) else dtypes))
    choices = [_kernel_choice(impl, variant, device, dtype, head_dim) for dtype in dtypes]
    if len(choices) == 1:
        return choices[0]
    kernels = {c["kernel"] for c in choices}
    name = lambda d: str(d).removeprefix("torch.")  # noqa: E731
    kernel = kernels.pop() if len(kernels) == 1 else ", ".join(f"{c['kernel']} ({name(d)})" for c, d in
                                                                zip(choices, dtypes, strict=True))  # fmt: skip
    return {"kernel": kernel, "self_check": "; ".join(f"{name(d)} {c['self_check']}"
                                                      for c, d in zip(choices, dtypes, strict=True))}  # fmt: skip


def _kernel_choice(impl: str, variant: str, device: str | torch.device, dtype: torch.dtype, head_dim: int) -> dict:
    from models.kernels.dispatch import _MAX_TRITON_HEAD_DIM, _TRITON_DTYPES
    from models.kernels.launch_config import INTERPRETING, triton_importable, triton_version_problem

    device = torch.device(device)
    if variant == "additive":
        return {"kernel": "torch", "self_check": "not needed: the additive form has no Triton kernel"}
    if impl == "torch":
        return {"kernel": "torch", "self_check": "not needed: kernel_impl=torch"}
    if impl == "cueq":
        from models.kernels.cueq import cueq_choice

        return cueq_choice(variant, device, dtype, head_dim)
    if device.type != "cuda":
        if impl == "auto":
            return {"kernel": "torch", "self_check": f"not run: auto uses the PyTorch path on {device.type}"}
        kernel = "triton (interpreter)" if INTERPRETING else "unavailable (impl=triton needs CUDA)"
        return {"kernel": kernel, "self_check": "not run: kernel_impl=triton forces the kernels"}
    if not triton_importable() or dtype not in _TRITON_DTYPES or head_dim > _MAX_TRITON_HEAD_DIM:
        why = triton_version_problem() if not triton_importable() else f"{dtype}, head dim {head_dim} unsupported"
        return {"kernel": "torch" if impl == "auto" else "unavailable", "self_check": f"not run: {why}"}
    result = self_check(variant, device, dtype, head_dim)
    verdict = ("passed: " if result.passed else "failed: ") + result.detail
    kernel = "triton" if (result.passed or impl == "triton") else "torch"
    return {"kernel": kernel, "self_check": verdict}
