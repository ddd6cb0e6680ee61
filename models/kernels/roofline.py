"""Analytic roofline of the triangle-attention kernels and of one Pairformer block: the time each would take
if it ran at its bound on a given GPU, for comparing a first GPU measurement with (``benchmarks/roofline.py``
prints the table; ``benchmarks/gpu_check.py`` prints measured / ideal).

ideal = max(FLOPs / peak bf16 tensor-core rate, exponentials / special-function rate, bytes / HBM bandwidth).

- FLOPs are the products each kernel computes, recomputation included (each backward kernel recomputes P):
  per (row, head) and (query, key) pair, 2·D per product; 2 products forward, 4 in ``_dkdv_kernel``, 3 in
  ``_dq_kernel``, 2 in the bias-gradient kernel.
- Exponentials (softmax only): one per logit per kernel that forms P (forward and the three backward kernels).
  The special-function units are slow next to the tensor cores (H100: 3.9 T/s against 989 TFLOP/s of bf16
  products), so at head dim 32 the softmax forward is bound by exp2, not by its products.
- Bytes are the least HBM traffic: every input read once and every output written once (bf16 tensors, fp32
  statistics and bias-gradient partials); re-reads of k/v tiles and the dQ running sum, which L2 should
  serve, are not counted, so the bound is optimistic.

For a Pairformer block the FLOPs are ``models.accounting``'s (forward; a training step is ~3×) and the bytes
assume each layer reads its input and writes its output once in bf16 with elementwise work fused into them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    """Peak rates of one GPU: dense bf16 tensor-core FLOP/s, special-function (exp2) ops/s, HBM bytes/s."""

    name: str
    bf16_flops: float
    sfu_ops: float
    hbm_bytes: float


# Vendor datasheet peaks (dense bf16, SXM parts); SFU: 16 ops/clock/SM (H100: 132 SMs, A100: 108 SMs × 1.41 GHz).
DEVICES = {
    "H100": Device("H100 SXM", 989e12, 3.9e12, 3.35e12),
    "A100": Device("A100 SXM 80GB", 312e12, 2.44e12, 2.039e12),
}


@dataclass(frozen=True)
class Cost:
    """Work of one kernel or block: FLOPs, exponentials, HBM bytes."""

    flops: float
    exps: float
    bytes: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.exps + other.exps, self.bytes + other.bytes)

    def ideal_s(self, device: Device) -> float:
        return max(self.flops / device.bf16_flops, self.exps / device.sfu_ops, self.bytes / device.hbm_bytes)

    def bound(self, device: Device) -> str:
        """Which rate sets ``ideal_s``: "matmul", "exp" or "memory"."""
        times = {"matmul": self.flops / device.bf16_flops, "exp": self.exps / device.sfu_ops,
                 "memory": self.bytes / device.hbm_bytes}  # fmt: skip
        return max(times, key=times.get)


def attention_costs(variant: str, n: int, heads: int, head_dim: int = 32, rows: int | None = None,
                    batch: int = 1, splits: int = 8) -> dict[str, Cost]:  # fmt: skip
    """Per kernel of ``variant`` ("vanilla" | "gated"; "dbias" is the gated form's dG) for ``rows`` (default n)
    rows of n keys in bf16. ``splits`` is the bias-gradient kernel's row split (its fp32 partials are written
    once each)."""
    rows = n if rows is None else rows
    pairs = batch * rows * heads * n * n  # (row, head, query, key)
    plane = batch * rows * heads * n * head_dim * 2  # one of q, k, v, o, dO, dq, dk, dv in bf16
    stats = batch * rows * heads * n * 4  # one fp32 value per query (lse, delta)
    bias = batch * heads * n * n * 2
    mask = batch * rows * n
    product = 2.0 * pairs * head_dim
    softmax = variant == "vanilla"
    exps = pairs if softmax else 0.0
    stat_reads = 2 * stats if softmax else 0  # lse and delta
    return {
        "fwd": Cost(2 * product, exps, 3 * plane + bias + mask + plane + (stats if softmax else 0)),
        "dkdv": Cost(4 * product, exps, 4 * plane + bias + mask + stat_reads + 2 * plane),
        "dq": Cost(3 * product, exps, 4 * plane + bias + mask + stat_reads + plane),
        "dbias": Cost(2 * product, exps, 4 * plane + bias + mask + stat_reads + splits * batch * heads * n * n * 4),
    }  # fmt: skip


def attention_total(variant: str, n: int, heads: int, head_dim: int = 32, rows: int | None = None) -> dict[str, Cost]:
    """{"fwd": forward, "fwd_bwd": forward + both backward kernels}."""
    k = attention_costs(variant, n, heads, head_dim, rows)
    return {"fwd": k["fwd"], "fwd_bwd": k["fwd"] + k["dkdv"] + k["dq"] + k["dbias"]}


def pairformer_block_cost(c_z: int, n: int, variant: str = "vanilla") -> Cost:
    """Forward of one Pairformer block (the paper's widths: c_s 384, head dim 32, tri-mul hidden = c_z,
    transition ×4) at n tokens, B = 1."""
    from models.accounting import _pairformer_flops
    from models.presets import get_preset

    cfg = get_preset("base", c_z=c_z, triangle_attention=variant)
    p, c, h, e = n * n, c_z, c_z, cfg.transition_expansion
    heads = c // cfg.tri_att_head_dim
    tri_mul = 2 * p * c + (p * c + 2 * p * h + p * c) + (3 * p * h) + 2 * p * h + (p * h + p * c) + 4 * p * c
    tri_att = 2 * p * c + (p * c + 3 * p * c + p * heads + p * c) + (p * c + 2 * p * c) + 4 * p * c
    transition = 2 * p * c + (p * c + 2 * e * p * c) + (2 * e * p * c + e * p * c) + (e * p * c + p * c) + 3 * p * c
    elements = 2 * tri_mul + 2 * tri_att + transition
    attention_exps = 2 * attention_costs(variant, n, heads, cfg.tri_att_head_dim)["fwd"].exps
    return Cost(_pairformer_flops(cfg, n, 1), attention_exps, 2.0 * elements)


def device_for(name: str) -> Device | None:
    """The ``DEVICES`` entry whose key appears in a CUDA device name (e.g. "NVIDIA H100 80GB HBM3")."""
    return next((d for key, d in DEVICES.items() if key in name), None)
