"""Sizes shown by ``harness sweep --dry-run``: parameters and FLOPs from ``models.accounting`` (the one source
of truth, tested against the real modules), plus a rough training peak-memory estimate defined here.

Memory estimate (GB), stated assumptions: fp32 weights + gradients + Adam moments + EMA copy = 20 bytes per
parameter; activations with per-block activation checkpointing: every pair block keeps its input
(n² · c_z · 4 bytes) and one block at a time holds ~30 pair-sized intermediates, plus, for softmax triangle
attention without the fused kernel, the H · n³ logits in fp32. It ignores the diffusion module's activations
(atom-local, O(diffusion_batch · n_atoms · c_atom)), so it is a lower bound at large diffusion batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import RunConfig

BYTES_PER_PARAM_TRAINING = 20
PAIR_INTERMEDIATES_PER_BLOCK = 30
ATOMS_PER_TOKEN = 8  # average heavy atoms per token in protein crops, for the FLOP count


@dataclass(frozen=True)
class RunSize:
    params: int
    flops_per_example: float  # one training forward at the configured crop size
    peak_memory_gb: float


def estimate(config: RunConfig) -> RunSize:
    from models.accounting import count_parameters, forward_flops

    arch = config.model.architecture()
    n = config.data.crop_size
    params = count_parameters(arch)["total"]
    flops = forward_flops(arch, n_tokens=n, n_atoms=n * ATOMS_PER_TOKEN, n_msa=config.data.max_msa_rows,
                          diffusion_batch=config.train.diffusion_batch)["total"]
    n_pair_blocks = arch.n_pairformer_blocks + arch.n_msa_blocks
    pair = n * n * arch.c_z * 4
    activations = n_pair_blocks * pair + PAIR_INTERMEDIATES_PER_BLOCK * pair
    if arch.triangle_attention == "vanilla":
        heads = max(1, arch.c_z // arch.tri_att_head_dim)
        activations += heads * n**3 * 4
    peak = (params * BYTES_PER_PARAM_TRAINING + activations) / 1e9
    return RunSize(params=params, flops_per_example=float(flops), peak_memory_gb=peak)
