"""Sizes shown by ``harness sweep --dry-run`` and ``harness config show``: parameters and FLOPs from
``models.accounting`` (the one source of truth, tested against the real modules; ``train_flops`` is also what
the run logs as ``perf/flops_per_step``), and the peak memory per GPU of each stage's training step, traced
under fake tensors (``harness.memory.plan``, cached). ``memory_gb`` below is the older analytic estimate, kept
for ``benchmarks/bench_memory_policy.py`` (which compares it with saved-for-backward bytes); the dry-run shows the
trace.

The example a dry-run sizes: ``crop_tokens`` tokens, min(atom budget, ``STARTER_ATOMS_PER_TOKEN`` x tokens)
atoms (heavy atoms per token in the bundled starter set, ``harness.data.config``), ``data.max_msa_rows`` MSA
rows; FLOPs averaged over the recycling counts 1..max_cycles that training draws uniformly. A run logs the same
formula at the sizes it actually saw.

Analytic memory estimate (GB per GPU, one micro-batch), assumptions: fp32 weights + gradients + Adam moments + EMA
copy = 20 bytes per parameter. Trunk activations (only the last recycling cycle keeps any) at 2 bytes per value
under a bf16 trunk, else 4 (block inputs, the fp32 residual stream, at 4): without checkpointing every pair
block keeps ~62 pair-sized (n² · c_z) tensors and, for softmax triangle attention, two H · n³ tensors, and every
MSA block also ~28 MSA-sized (rows · n · c_m) ones; with per-block checkpointing every block keeps only its input
and one block at a time holds the rest while it is recomputed. The diffusion module (fp32) keeps ~20 token-sized
(n · c_token) values per transformer block and ~30 atom-sized (n_atoms · c_atom) values plus the windowed
attention logits per atom block (one more of each in the sequential block order), per noised copy alive at once
(``policy.diffusion_chunk_size``). The losses keep ~7 (diffusion_batch, n_atoms, n_atoms) fp32 tensors (smooth
lDDT) whatever the chunking. Constants measured by benchmarks/bench_memory_policy.py (BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import RunConfig
from harness.data.config import STARTER_ATOMS_PER_TOKEN
from harness.memory.plan import StagePlan, plan_memory
from harness.recipe import Recipe, Stage, confidence_trains, resolve

BYTES_PER_PARAM_TRAINING = 20
# Measured with benchmarks/bench_memory_policy.py (saved-for-backward bytes of one Pairformer block, torch
# kernels, dropout on): 62 pair-sized tensors plus ~2 H·n³ attention tensors per block; the losses keep ~7
# (copies, atoms, atoms) fp32 tensors (smooth lDDT's pair distances).
PAIR_INTERMEDIATES_PER_BLOCK = 62
# MSA-sized (rows · n · c_m) tensors one MSA block saves for backward besides its pair stack (OuterProductMean,
# PairWeightedAveraging, transition, dropout): 27.3-28.5 measured with saved-tensor hooks (fp32, 256-512 rows).
MSA_INTERMEDIATES_PER_BLOCK = 28
LOSS_ATOM_PAIR_TENSORS = 7
DIFFUSION_TOKEN_INTERMEDIATES_PER_BLOCK = 20
ATOM_INTERMEDIATES_PER_BLOCK = 30
# The sequential block order (model.transformer_block_order) also keeps the residual between attention and
# transition (the transition's AdaLN input): one more token- / atom-sized tensor per block (measured with
# saved-tensor hooks on a DiffusionTransformer block: 45.8 token-sized tensors parallel, 46.8 sequential).
SEQUENTIAL_EXTRA_PER_BLOCK = 1


@dataclass(frozen=True)
class ExampleSize:
    n_tokens: int
    n_atoms: int
    n_msa: int


@dataclass(frozen=True)
class RunSize:
    params: int
    recipe: Recipe
    example: ExampleSize
    flops_per_example: float  # one training example (forward + backward), mean over recycling counts
    flops_per_step: float  # x the global batch
    memory: list[StagePlan]  # per stage: traced peak of one training step per GPU and the chunking in effect


def typical_example(config: RunConfig, stage: Stage) -> ExampleSize:
    atoms = min(stage.atom_budget, round(stage.crop_size * STARTER_ATOMS_PER_TOKEN))
    return ExampleSize(n_tokens=stage.crop_size, n_atoms=atoms, n_msa=config.data.max_msa_rows)


def example_flops(config: RunConfig, example: ExampleSize, *, n_cycles: int, diffusion_batch: int) -> float:
    """``models.accounting.train_flops`` of one example, with the run's confidence setting."""
    from models.accounting import train_flops

    arch = config.model.architecture()
    return train_flops(arch, n_tokens=example.n_tokens, n_atoms=example.n_atoms, n_msa=example.n_msa,
                       n_cycles=n_cycles, diffusion_batch=diffusion_batch,
                       confidence=confidence_trains(config))


def memory_gb(config: RunConfig, example: ExampleSize, diffusion_batch: int, *, checkpointed: bool) -> float:
    from models.accounting import count_parameters

    arch = config.model.architecture()
    policy = arch.policy
    b = config.data.batch_size
    n, a, s = example.n_tokens, example.n_atoms, example.n_msa
    trunk_bytes = 2 if policy.trunk_precision == "bf16" else 4
    pair = b * n * n * arch.c_z * trunk_bytes
    logits = 0.0
    if arch.triangle_attention == "vanilla":
        logits = 2 * b * max(1, arch.c_z // arch.tri_att_head_dim) * n**3 * trunk_bytes
    msa = b * s * n * arch.c_m * trunk_bytes
    n_pair_blocks = arch.n_pairformer_blocks + arch.n_msa_blocks
    one_block = PAIR_INTERMEDIATES_PER_BLOCK * pair + logits
    msa_block = MSA_INTERMEDIATES_PER_BLOCK * msa if arch.n_msa_blocks else 0
    if checkpointed:
        # The residual stream stays fp32 under autocast: each block's saved input is 4 bytes per value. One block
        # at a time is recomputed in backward; an MSA block holds its MSA part on top of its pair part.
        trunk = (n_pair_blocks * pair * 4 / trunk_bytes + arch.n_msa_blocks * msa * 4 / trunk_bytes + one_block
                 + msa_block)
    else:
        trunk = n_pair_blocks * one_block + arch.n_msa_blocks * msa_block
    copies = min(diffusion_batch, policy.diffusion_chunk_size or diffusion_batch)
    token = b * copies * n * arch.c_token * 4
    pair_bias = b * n * n * arch.n_diffusion_heads * 4
    atom_blocks = arch.n_atom_encoder_blocks + arch.n_atom_decoder_blocks
    extra = SEQUENTIAL_EXTRA_PER_BLOCK if arch.transformer_block_order == "sequential" else 0
    atom = b * copies * a * ((ATOM_INTERMEDIATES_PER_BLOCK + extra) * arch.c_atom + arch.atom_window_keys
                             * arch.n_atom_heads) * 4
    per_block = (DIFFUSION_TOKEN_INTERMEDIATES_PER_BLOCK + extra) * token + pair_bias
    if checkpointed:
        diffusion = arch.n_diffusion_blocks * token + per_block + atom_blocks * atom
    else:
        diffusion = arch.n_diffusion_blocks * per_block + atom_blocks * atom
    losses = LOSS_ATOM_PAIR_TENSORS * b * diffusion_batch * a * a * 4
    states = count_parameters(arch)["total"] * BYTES_PER_PARAM_TRAINING
    return (states + trunk + diffusion + losses) / 1e9


def estimate(config: RunConfig, stage: Stage | None = None, example: ExampleSize | None = None,
             recipe: Recipe | None = None, *, memory: bool = True) -> RunSize:
    """Sizes of ``config`` in ``stage`` (default: the first) for ``example`` (default: a typical crop); with
    ``memory`` also every stage's traced memory (cached traces, else minutes of CPU per new GPU configuration;
    a CPU run's plan reads the cache only). Without ``memory`` nothing is traced (FLOPs for a study's budgets).
    ``recipe``: ``resolve(config)`` when the caller holds it already (the run)."""
    from models.accounting import count_parameters

    recipe = recipe or resolve(config, trace=memory)
    stage = stage or recipe.stages[0]
    example = example or typical_example(config, stage)
    cycles = range(1, config.train.max_cycles + 1)
    flops = sum(example_flops(config, example, n_cycles=k, diffusion_batch=stage.diffusion_batch)
                for k in cycles) / len(cycles)
    global_batch = recipe.global_batch if isinstance(recipe.global_batch, int) else config.data.batch_size
    return RunSize(params=count_parameters(config.model.architecture())["total"], recipe=recipe, example=example,
                   flops_per_example=flops, flops_per_step=flops * global_batch,
                   memory=plan_memory(config, recipe.stages) if memory else [])
