"""Frozen numerics of the Pairformer block: the same random weights and inputs, the outputs and gradients that
the block computed before its CPU speed work (commit ed94538), so rewrites of the block's internals are held
to the old numbers. ``python -m tests.models.pairformer_fixture`` rewrites ``data/pairformer_block_v0.pt``
from the code in the tree (only do so when the numerics are meant to change)."""

from __future__ import annotations

from pathlib import Path

import torch

from models.config import ModelConfig
from models.modules.pairformer import PairformerBlock

FIXTURE = Path(__file__).parent / "data" / "pairformer_block_v0.pt"
# Odd length, two heads of triangle attention, padded tokens in the second example, chunked rows in one case.
CASES = {
    "vanilla": dict(triangle_attention="vanilla"),
    "gated": dict(triangle_attention="gated"),
    "additive": dict(triangle_attention="additive", linear_bias_activation="softplus"),
    "vanilla_chunked_eval": dict(triangle_attention="vanilla", chunk_size=5),
    "tri_mul_hidden": dict(triangle_attention="vanilla", tri_mul_hidden=24),
}
N, C_S, C_Z = 13, 32, 32


def build(case: str) -> PairformerBlock:
    """The block of ``case`` with seeded N(0, 0.2²) weights (LayerNorm scales 1 + that), so no branch is zero."""
    cfg = ModelConfig(
        c_s=C_S, c_z=C_Z, tri_att_head_dim=16, n_single_heads=4, kernel_impl="torch", pair_dropout=0.0,
        **CASES[case],
    )  # fmt: skip
    block = PairformerBlock(cfg, C_S, C_Z)
    scales = {f"{m}.weight" for m, mod in block.named_modules() if isinstance(mod, torch.nn.LayerNorm)}
    g = torch.Generator().manual_seed(17)
    with torch.no_grad():
        for name, p in sorted(block.named_parameters()):
            noise = 0.2 * torch.randn(p.shape, generator=g)
            p.copy_(1.0 + noise if name in scales else noise)
    return block.eval() if case.endswith("_eval") else block.train()


def inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """s (2, N, C_S), z (2, N, N, C_Z), token_mask (2, N) with the last 3 tokens of example 1 padded."""
    g = torch.Generator().manual_seed(3)
    s = torch.randn(2, N, C_S, generator=g)
    z = torch.randn(2, N, N, C_Z, generator=g)
    mask = torch.ones(2, N, dtype=torch.bool)
    mask[1, -3:] = False
    return s, z, mask


def run(block: PairformerBlock) -> dict[str, torch.Tensor]:
    """Outputs, input gradients and per-parameter gradient sums/norms of loss = Σ s_out·w_s + Σ z_out·w_z."""
    s, z, mask = inputs()
    s.requires_grad_(True)
    z.requires_grad_(True)
    s_out, z_out = block(s, z, mask)
    g = torch.Generator().manual_seed(5)
    w_s, w_z = torch.randn(s_out.shape, generator=g), torch.randn(z_out.shape, generator=g)
    ((s_out * w_s).sum() + (z_out * w_z).sum()).backward()
    named = sorted(block.named_parameters())
    return {
        "s_out": s_out.detach(), "z_out": z_out.detach(), "grad_s": s.grad, "grad_z": z.grad,
        "param_grad_sum": torch.stack([p.grad.sum() for _, p in named]),
        "param_grad_norm": torch.stack([p.grad.norm() for _, p in named]),
    }  # fmt: skip


def main() -> None:
    torch.set_num_threads(1)
    frozen = {case: run(build(case)) for case in CASES}
    FIXTURE.parent.mkdir(exist_ok=True)
    torch.save(frozen, FIXTURE)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
