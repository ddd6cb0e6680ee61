"""The recipe layer: the settings a run derives from what its config states, validated and shown.

What the user states (crop, ``train.global_batch``, devices, ``model.policy``, stages) determines what is in
effect: the atom budget of every stage's crop, the gradient accumulation, the precision of each module, the
checkpointing, the stage loss weights. ``resolve`` computes them once; ``harness sweep --dry-run``, ``harness
config show``, the run folder's ``config.yaml`` (its ``derived`` section) and the training loop all read the
same ``Recipe``. ``recipe_problems`` lists what cannot work, each problem naming its key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from harness.data.config import atom_budget_problem

if TYPE_CHECKING:
    from harness.config import RunConfig

# Lightning's own precision: fp32 weights and optimizer; the model's policy autocasts the trunk itself
# (a Trainer-wide "bf16-mixed" would also autocast the structure module, against SPEC.md §2.8).
TRAINER_PRECISION = "32-true"


@dataclass(frozen=True)
class Stage:
    """Steps [start, end) of one training stage. ``crop_size`` None = data.crop_size."""

    start: int
    end: int
    crop_size: int | None
    diffusion_batch: int
    atom_budget: int = 0
    bond_weight: float = 0.0
    pae_weight: float = 0.0

    def loss_weights(self, base: dict[str, float]) -> dict[str, float]:
        """The weights ``models.losses.compute_losses`` takes in this stage."""
        return base | {"bond": self.bond_weight, "pae": self.pae_weight}


def plan_stages(config: RunConfig) -> list[Stage]:
    """Split ``[0, max_steps)`` into the configured stages (a single stage when none is given)."""
    from harness.config import StageConfig

    t, data = config.train, config.data
    stages = sorted(t.stages, key=lambda s: s.start_step) or [StageConfig(start_step=0)]
    if stages[0].start_step != 0:
        stages = [StageConfig(start_step=0), *stages]
    out = []
    for i, s in enumerate(stages):
        end = min(stages[i + 1].start_step if i + 1 < len(stages) else t.max_steps, t.max_steps)
        if end > s.start_step:
            crop = s.crop_size or data.crop_size
            out.append(Stage(s.start_step, end, s.crop_size, s.diffusion_batch or t.diffusion_batch,
                             atom_budget=data.atom_budget_for(crop), bond_weight=s.weight("bond_weight"),
                             pae_weight=s.weight("pae_weight")))
    return out


@dataclass(frozen=True)
class Recipe:
    """The derived settings of one run (all per optimizer step unless named otherwise)."""

    crop_tokens: int
    atom_budget: int
    atom_budget_source: str  # "set" (data.max_atoms) or "derived" (crop_size x atoms_per_token)
    msa_rows: int
    per_device_batch: int
    devices: int | str
    num_nodes: int
    global_batch: int | str  # a string when devices are "auto" (known only at run time)
    accumulation: int
    lr: float
    warmup_steps: int
    trainer_precision: str
    precision: dict[str, str]
    checkpoint_blocks: bool
    opm_chunk_size: int | None
    diffusion_chunk_size: int | str | None
    tf32: bool
    stages: list[dict[str, Any]]
    confidence_adam_eps: float | None  # Adam's ε of the confidence head's group; None: the head does not train
    # Per stage: noised copies per diffusion-module call in effect (``auto`` resolved from the traced step,
    # harness.memory.plan) and atoms per block of the smooth lDDT loss.
    chunking: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _devices(config: RunConfig) -> int | None:
    return config.train.devices if isinstance(config.train.devices, int) else None


def accumulation_for(config: RunConfig, world_size: int | None = None) -> int:
    """Micro-batches per optimizer step: global_batch / (per-device batch x world size); 1 without
    ``train.global_batch``. ``world_size`` = devices x nodes (the config's, or the trainer's at run time)."""
    t = config.train
    if t.global_batch is None:
        return 1
    world = world_size if world_size is not None else (_devices(config) or 1) * t.num_nodes
    per_step = config.data.batch_size * world
    if t.global_batch % per_step:
        raise ValueError(f"train.global_batch={t.global_batch} is not a multiple of data.batch_size x devices x "
                         f"nodes = {config.data.batch_size} x {world // t.num_nodes} x {t.num_nodes} = {per_step}")
    return t.global_batch // per_step


def resolve(config: RunConfig, *, trace: bool | None = None) -> Recipe:
    """The derived settings of ``config``. ``diffusion_chunk_size: auto`` is resolved from the traced training
    step (``harness.memory.plan.plan_memory``: a GPU run's traces cached, else traced; a CPU run's not traced;
    ``trace=False`` reads the cache only and leaves a stage without a cached trace unresolved, for callers that
    need no chunking, e.g. FLOPs)."""
    t, data, policy = config.train, config.data, config.model.policy
    devices = _devices(config)
    per_step = data.batch_size * (devices or 1) * t.num_nodes
    accumulation = accumulation_for(config)
    if t.global_batch is not None:
        global_batch: int | str = t.global_batch
    elif devices is None:
        global_batch = f"{data.batch_size} x devices x {t.num_nodes} (devices: auto)"
    else:
        global_batch = per_step
    stages = [
        {"start": s.start, "end": s.end, "crop_tokens": s.crop_size or data.crop_size,
         "atom_budget": s.atom_budget, "diffusion_batch": s.diffusion_batch,
         "bond_weight": s.bond_weight, "pae_weight": s.pae_weight}
        for s in plan_stages(config)
    ]
    return Recipe(
        crop_tokens=data.crop_size, atom_budget=data.atom_budget,
        atom_budget_source="set" if data.max_atoms is not None else f"derived: crop x {data.atoms_per_token:g}",
        msa_rows=data.max_msa_rows, per_device_batch=data.batch_size, devices=t.devices, num_nodes=t.num_nodes,
        global_batch=global_batch, accumulation=accumulation, lr=t.lr, warmup_steps=t.warmup_steps,
        trainer_precision=TRAINER_PRECISION, precision=policy.precision_by_module(),
        checkpoint_blocks=policy.checkpoint_blocks, opm_chunk_size=policy.opm_chunk_size,
        diffusion_chunk_size=policy.diffusion_chunk_size, tf32=policy.tf32, stages=stages,
        confidence_adam_eps=confidence_adam_eps(config), chunking=stage_chunking(config, trace=trace),
    )


def stage_chunking(config: RunConfig, *, trace: bool | None = None) -> list[dict[str, Any]]:
    """What each stage chunks: ``diffusion_chunk_size`` as set, or as chosen from the trace when ``auto`` (a GPU
    run's cached traces, else minutes of CPU unless ``trace`` is False; only configs asking for ``auto`` trace
    here; a CPU run runs all copies at once, not traced)."""
    from models.lddt import lddt_block_rows

    chunk = config.model.policy.diffusion_chunk_size
    if chunk == "auto":
        from harness.memory.plan import plan_memory

        return [{"start": p.start, "diffusion_chunk_size": p.diffusion_chunk,
                 "source": "auto (traced)" if p.memory is not None else "auto (not traced: all copies on a CPU "
                 "run)" if p.untraced == "CPU run" else "auto (not traced)",
                 "lddt_block_rows": p.lddt_block_rows} for p in plan_memory(config, trace=trace)]
    return [{"start": s.start, "diffusion_chunk_size": chunk if chunk is not None and chunk < s.diffusion_batch
             else None, "source": "set",
             "lddt_block_rows": lddt_block_rows(config.data.batch_size, s.diffusion_batch, s.atom_budget)}
            for s in plan_stages(config)]


def confidence_adam_eps(config: RunConfig) -> float | None:
    """Adam's ε for the confidence head's parameters: ``train.eps × α_conf``; None when the head does not train.

    The head's inputs are detached (AF3 §4.3.5), so its parameters learn from ``α_conf · L_conf`` alone, and Adam
    is blind to a loss's scale except through ε. At AF3's α_conf = 1e-4 the head's gradients are ~1e-9 (measured:
    55 % of a miniature head's parameters have an RMS gradient under 1e-8), so the literal ε = 1e-8 would damp
    most of its updates many-fold and α_conf would act as a hidden learning-rate cut. Scaling ε by α_conf gives the
    head exactly the update of an unweighted loss at ε, which is what α_conf, a weight among losses, can mean
    for parameters that see only one loss (BENCHMARKS.md, "confidence head")."""
    t = config.train
    if not t.confidence_loss or t.loss_weights.confidence == 0 or not config.model.architecture().use_confidence_head:
        return None
    return t.eps * t.loss_weights.confidence


def recipe_problems(config: RunConfig) -> list[str]:
    """What in ``config`` cannot be derived, one line per problem naming the key."""
    t, data = config.train, config.data
    problems = []
    if t.global_batch is not None and _devices(config) is None:
        problems.append("train.global_batch needs an integer train.devices (with devices: auto the accumulation "
                        "would depend on the machine)")
    elif t.global_batch is not None:
        try:
            accumulation_for(config)
        except ValueError as exc:
            problems.append(str(exc))
    if data.max_atoms is not None:
        for i, stage in enumerate(t.stages):
            if stage.crop_size is not None:
                p = atom_budget_problem("data.max_atoms", data.max_atoms, stage.crop_size,
                                        f"train.stages.{i}.crop_size")
                if p:
                    problems.append(p)
    return problems
