"""The memory plan of a run: per training stage, the traced peak of one training step per GPU and the chunking in
effect, with ``model.policy.diffusion_chunk_size: auto`` chosen here from the trace.

The traced step is the stage's worst case: a crop of ``crop_size`` tokens filling the stage's whole atom budget,
``data.max_msa_rows`` MSA rows, ``data.batch_size`` examples of the stage's diffusion batch (see
``models.memory`` for what the trace covers). Auto chunking takes the most noised copies per diffusion-module
call (the whole batch, then halves) whose traced step stays within ``policy.memory_target_gb``: fewer calls are
faster, and the values do not depend on the chunking. Where no chunking fits with per-block checkpointing (the
peak is then one Pairformer block's recomputation in backward, which diffusion chunking does not touch),
``policy.checkpoint_sublayers: auto`` turns on sub-layer checkpointing for that stage and searches the chunking
again; where that is not enough either (every Pairformer block's input is alive in the forward phase: 48 pair
representations), ``policy.checkpoint_group: auto`` checkpoints the trunk Pairformer in groups of the divisor of
its depth nearest the depth's square root and searches once more. Each step of that ladder costs compute (a third
more trunk compute for sub-layers, one more Pairformer forward for groups), so a stage takes the first that fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.config import ModelConfig
from models.lddt import lddt_block_rows
from models.memory import StepMemory, StepShape, trace_step

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.memory.cache import TraceCache
    from harness.recipe import Stage

HEADROOM = 0.10  # a run fits a GPU when its traced step needs at most 90 % of the GPU's memory


@dataclass(frozen=True)
class StagePlan:
    """One stage's traced step and the chunking it runs with."""

    start: int
    crop_tokens: int
    atoms: int
    diffusion_batch: int
    diffusion_chunk: int | None  # noised copies per diffusion-module call; None = all at once
    chunk_source: str  # "set" (the config's value) or "auto" (chosen from the trace)
    lddt_block_rows: int  # atoms l per block of the smooth lDDT loss
    memory: StepMemory | None  # None: not traced, for the reason in ``untraced``
    target_gb: float
    untraced: str = ""  # why ``memory`` is None: "CPU run" or "not in the trace cache"
    sublayers: bool = False  # each pair-block update checkpointed on its own (policy.checkpoint_sublayers)
    sublayers_source: str = "set"  # "set" or "auto" (chosen from the trace)
    group: int = 1  # trunk Pairformer blocks per outer checkpoint (policy.checkpoint_group)
    group_source: str = "set"  # "set" or "auto" (chosen from the trace)

    @property
    def fits_target(self) -> bool:
        return self.memory is not None and self.memory.peak_gb <= self.target_gb

    def describe_chunking(self) -> str:
        copies = "all" if self.diffusion_chunk is None else str(self.diffusion_chunk)
        auto = " (auto)" if self.chunk_source == "auto" else ""
        sub = ", sub-layer checkpointing" + (" (auto)" if self.sublayers_source == "auto" else "")
        group = (f", Pairformer checkpointed in groups of {self.group} blocks"
                 + (" (auto)" if self.group_source == "auto" else ""))
        return (f"diffusion {copies}/{self.diffusion_batch} copies per call{auto}, "
                f"lDDT blocks of {self.lddt_block_rows} atoms{sub if self.sublayers else ''}"
                f"{group if self.group > 1 else ''}")


def step_shape(config: RunConfig, stage: Stage) -> StepShape:
    return StepShape(n_tokens=stage.crop_size, n_atoms=stage.atom_budget,
                     n_msa=config.data.max_msa_rows, diffusion_batch=stage.diffusion_batch,
                     batch_size=config.data.batch_size, confidence=stage.confidence)


def with_chunk(arch: ModelConfig, chunk: int | None, sublayers: bool | None = None,
               group: int | None = None) -> ModelConfig:
    """``arch`` with its diffusion chunking (and, given, sub-layer checkpointing and the Pairformer's checkpoint
    group) resolved."""
    update = ({"diffusion_chunk_size": chunk} | ({} if sublayers is None else {"checkpoint_sublayers": sublayers})
              | ({} if group is None else {"checkpoint_group": group}))
    return arch.model_copy(update={"policy": arch.policy.model_copy(update=update)})


def auto_group(depth: int) -> int:
    """The checkpoint group ``auto`` takes: the divisor of ``depth`` nearest √depth (the smaller on a tie), which
    keeps about depth/g + g ≈ 2√depth pair representations alive (48 blocks: groups of 6, 8 + 6 = 14, not 48)."""
    divisors = [d for d in range(1, depth + 1) if depth % d == 0]
    return min(divisors, key=lambda d: (abs(d - math.sqrt(depth)), d))


def chunk_candidates(copies: int) -> list[int]:
    """Copies per call tried by auto chunking, largest first: D, ⌈D/2⌉, ⌈D/4⌉, ..., 1."""
    out, k = [], 0
    while not out or out[-1] > 1:
        c = math.ceil(copies / 2**k)
        if not out or c < out[-1]:
            out.append(c)
        k += 1
    return out


def gpu_profile(config: RunConfig) -> bool:
    """Whether the run trains on GPUs (``train.accelerator: gpu``): only those are traced by default. A CPU run
    (the mini, long and study profiles) has no GPU memory to fit: its plan reads no trace and makes none."""
    return config.train.accelerator == "gpu"


def _set_chunk(arch: ModelConfig, shape: StepShape) -> int | None | str:
    """The config's copies per diffusion call for ``shape`` (None: all at once), or "auto"."""
    chunk = arch.policy.diffusion_chunk_size
    if chunk == "auto":
        return chunk
    return None if chunk is None or chunk >= shape.diffusion_batch else chunk


def plan_stage(config: RunConfig, stage: Stage, cache: TraceCache | None, *, trace: bool = True) -> StagePlan:
    """The stage's plan. ``cache`` None: nothing is read nor traced (``memory`` None; ``auto`` runs all copies at
    once). ``trace``: trace what the cache lacks; else a stage without a cached trace has ``memory`` None and,
    for ``auto``, all copies at once."""
    from harness.memory.cache import NotTraced

    arch = config.model.architecture()
    shape = step_shape(config, stage)
    target = arch.policy.memory_target_gb
    rows = lddt_block_rows(shape.batch_size, shape.diffusion_batch, shape.n_atoms)
    chunk = _set_chunk(arch, shape)
    source = "auto" if chunk == "auto" else "set"
    blocks = arch.policy.checkpoint_blocks
    sub_setting = arch.policy.checkpoint_sublayers if blocks else False
    sub_source = "auto" if sub_setting == "auto" else "set"
    group_setting = arch.policy.checkpoint_group if blocks else 1
    group_source = "auto" if group_setting == "auto" else "set"

    def plan(chunk: int | None, memory: StepMemory | None, untraced: str = "", sublayers: bool = False,
             group: int = 1) -> StagePlan:
        return StagePlan(stage.start, shape.n_tokens, shape.n_atoms, shape.diffusion_batch, chunk, source, rows,
                         memory, target, untraced, sublayers, sub_source, group, group_source)

    # The ladder of (sub-layers, group) settings tried in order, cheapest first; "auto" starts off.
    ladder = [(sub_setting is True, 1 if group_setting == "auto" else group_setting)]
    if sub_setting == "auto":
        ladder.append((True, ladder[0][1]))
    if group_setting == "auto" and auto_group(arch.n_pairformer_blocks) > 1:
        ladder.append((ladder[-1][0], auto_group(arch.n_pairformer_blocks)))
    if cache is None:
        return plan(None if chunk == "auto" else chunk, None, "CPU run", *ladder[0])

    def search(sublayers: bool, group: int) -> StagePlan:
        def traced(chunk: int | None) -> StepMemory:
            return trace_step(with_chunk(arch, chunk, sublayers, group), shape,
                              trace=cache.get if trace else cache.cached)

        if chunk != "auto":
            return plan(chunk, traced(chunk), sublayers=sublayers, group=group)
        return plan(*_auto_chunk(shape.diffusion_batch, target, traced), sublayers=sublayers, group=group)

    try:
        for sublayers, group in ladder:
            found = search(sublayers, group)
            if found.fits_target:
                break
        return found
    except NotTraced:
        return plan(None if chunk == "auto" else chunk, None, "not in the trace cache", *ladder[0])


def _auto_chunk(copies: int, target_gb: float, traced) -> tuple[int | None, StepMemory]:
    """The most copies per call (all, then halves) whose traced step fits ``target_gb``, and that trace; the
    fewest (1) when none does. All copies are traced first, then one copy per call: when even that does not fit,
    no chunking does, and the search stops there (the plan's next rung, sub-layer or grouped checkpointing, is
    tried instead). Memory grows about linearly with the copies alive at once: the line through the two smallest
    traced chunks predicts the largest candidate that fits, which is traced, and the answer is confirmed by
    tracing the next larger candidate."""
    candidates = chunk_candidates(copies)
    whole = traced(None)
    if whole.peak_gb <= target_gb or len(candidates) == 1:
        return None, whole
    seen: dict[int, StepMemory] = {}

    def fits(c: int) -> bool:
        if c not in seen:
            seen[c] = traced(c)
        return seen[c].peak_gb <= target_gb

    if not fits(1):
        return 1, seen[1]
    i = 1
    while not fits(candidates[i]):
        (c1, m1), (c2, m2) = sorted(seen.items())[:2]
        slope = (m2.peak_bytes - m1.peak_bytes) / (c2 - c1)
        predicted = [j for j in range(i + 1, len(candidates))
                     if (m1.peak_bytes + (candidates[j] - c1) * slope) / 1e9 <= target_gb]
        i = predicted[0] if predicted else len(candidates) - 1
    while i > 1 and candidates[i - 1] not in seen and fits(candidates[i - 1]):
        i -= 1  # the prediction was pessimistic: a larger chunk fits too
    return candidates[i], seen[candidates[i]]


def plan_memory(config: RunConfig, stages: Sequence[Stage], cache: TraceCache | None = None, *,
                trace: bool | None = None) -> list[StagePlan]:
    """The plan of every stage of ``config`` (``stages``: its resolved stages, from ``harness.recipe.resolve`` or
    ``plan_stages``; the recipe plans while it resolves, so this module never imports it). ``trace`` None (the
    default): a GPU run (``gpu_profile``) reads the cache and traces what it lacks (unless
    ``SEEDFOLD_TRACE=off``: the cache only); a CPU run reads no trace and makes none. ``trace`` False reads the
    cache only (missing traces leave ``memory`` None); True traces whatever the run."""
    from harness.memory.cache import TraceCache, tracing_allowed

    if trace is None and not gpu_profile(config):
        return [plan_stage(config, stage, None) for stage in stages]
    cache = cache or TraceCache()
    trace = tracing_allowed() if trace is None else trace
    return [plan_stage(config, stage, cache, trace=trace) for stage in stages]


def stage_architecture(config: RunConfig, stage: Stage, cache: TraceCache | None = None) -> ModelConfig:
    """The model a stage trains: ``model.architecture()`` with ``diffusion_chunk_size: auto`` and
    ``checkpoint_sublayers: auto`` resolved (from the trace on a GPU run, traced at the run's start when not
    cached; on a CPU run all copies at once and no sub-layer checkpointing)."""
    arch = config.model.architecture()
    policy = arch.policy
    if "auto" not in (policy.diffusion_chunk_size, policy.checkpoint_sublayers, policy.checkpoint_group):
        return arch
    from harness.memory.cache import TraceCache

    if not gpu_profile(config):
        plan = plan_stage(config, stage, None)
    else:
        plan = plan_stage(config, stage, cache or TraceCache())
    return with_chunk(arch, plan.diffusion_chunk if policy.diffusion_chunk_size == "auto" else
                      policy.diffusion_chunk_size, plan.sublayers, plan.group)
