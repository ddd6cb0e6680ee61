"""The recipe layer: the settings a run derives from what its config states, validated and shown.

What the user states (crop, ``train.global_batch``, devices, ``model.policy``, stages) determines what is in
effect: the atom budget of every stage's crop, the gradient accumulation, the precision of each module, the
checkpointing, the stage loss weights, whether the confidence head trains and its Adam ε. ``resolve`` computes
them once and raises a ``ConfigError`` for what cannot work (each problem naming its key); ``harness sweep
--dry-run``, ``harness config show``, the run folder's ``config.yaml`` (its ``derived`` section) and the training
loop all read the same ``Recipe``, and ``train_run`` hands each resolved ``Stage`` to the data and training
modules, which read it and never derive again. ``harness.config`` is the schema below this layer: it knows
nothing of what a config derives.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.config import RunConfig, StageConfig
from harness.data.config import DataConfig, atom_budget_problem
from harness.errors import ConfigError

# Lightning's own precision: fp32 weights and optimizer; the model's policy autocasts the trunk itself
# (a Trainer-wide "bf16-mixed" would also autocast the structure module, against docs/DESIGN.md §2).
TRAINER_PRECISION = "32-true"


@dataclass(frozen=True)
class Stage:
    """Steps [start, end) of one training stage, fully resolved: what the data and training modules run with.

    ``crop_size``: tokens per crop (the stage's, else ``data.crop_size``); ``atom_budget``: atoms per crop;
    ``loss_weights``: the weights ``models.losses.compute_losses`` takes (the run's, with this stage's α_bond and
    α_pae); ``confidence``: the confidence head trains (its outputs and loss are computed; otherwise it is frozen);
    ``confidence_adam_eps``: Adam's ε of its optimiser group, None when it has none (see ``confidence_adam_eps``);
    ``accumulation``: micro-batches per optimizer step, derived for ``world_size`` = devices x nodes processes
    (None: any world, nothing accumulates without ``train.global_batch``).
    """

    start: int
    end: int
    crop_size: int
    diffusion_batch: int
    atom_budget: int
    bond_weight: float
    pae_weight: float
    loss_weights: dict[str, float] = field(default_factory=dict)
    confidence: bool = False
    confidence_adam_eps: float | None = None
    accumulation: int = 1
    world_size: int | None = None
    # What the stage chunks (``stage_chunking``): ``diffusion_chunk_size`` (noised copies per diffusion-module
    # call; ``auto`` resolved from the traced step, harness.memory.plan), its ``source``, ``lddt_block_rows``
    # (atoms per block of the smooth lDDT loss), ``checkpoint_sublayers`` (each pair-block update recomputed on
    # its own) and ``checkpoint_group`` (trunk Pairformer blocks per outer checkpoint).
    chunking: dict[str, Any] = field(default_factory=dict)

    def data_config(self, data: DataConfig) -> DataConfig:
        """``data`` with this stage's crop: what the data module samples in this stage (its atom budget is then
        this stage's ``atom_budget``)."""
        return data.model_copy(update={"crop_size": self.crop_size})

    def record(self) -> dict[str, Any]:
        """This stage as the ``derived`` record shows it."""
        return {"start": self.start, "end": self.end, "crop_tokens": self.crop_size, "atom_budget": self.atom_budget,
                "diffusion_batch": self.diffusion_batch, "bond_weight": self.bond_weight,
                "pae_weight": self.pae_weight}


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
    stages: tuple[Stage, ...]
    confidence_adam_eps: float | None  # Adam's ε of the confidence head's group; None: the head does not train

    @property
    def chunking(self) -> list[dict[str, Any]]:
        """Per stage (from its ``start``): what it chunks (``Stage.chunking``)."""
        return [{"start": s.start, **s.chunking} for s in self.stages]

    def as_dict(self) -> dict[str, Any]:
        """The ``derived`` record (config.yaml, ``harness config show``): every field, stages as their record,
        then the chunking per stage."""
        out = asdict(self)
        out["stages"] = [s.record() for s in self.stages]
        return out | {"chunking": self.chunking}


def _devices(config: RunConfig) -> int | None:
    return config.train.devices if isinstance(config.train.devices, int) else None


def accumulation_for(config: RunConfig, world_size: int | None = None) -> int:
    """Micro-batches per optimizer step: global_batch / (per-device batch x world size); 1 without
    ``train.global_batch``. ``world_size`` = devices x nodes (the config's unless given). Raises ValueError when
    the global batch is not a multiple of the per-step batch."""
    t = config.train
    if t.global_batch is None:
        return 1
    world = world_size if world_size is not None else (_devices(config) or 1) * t.num_nodes
    per_step = config.data.batch_size * world
    if t.global_batch % per_step:
        raise ValueError(f"train.global_batch={t.global_batch} is not a multiple of data.batch_size x devices x "
                         f"nodes = {config.data.batch_size} x {world // t.num_nodes} x {t.num_nodes} = {per_step}")
    return t.global_batch // per_step


def confidence_trains(config: RunConfig) -> bool:
    """The confidence head trains: the model has one and ``train.confidence_loss`` is on (its outputs and loss
    are computed); otherwise the head, if any, stays frozen at initialisation."""
    return config.train.confidence_loss and config.model.architecture().use_confidence_head


def stage_chunking(config: RunConfig, stages: tuple[Stage, ...], *, trace: bool | None = None) -> list[dict[str, Any]]:
    """What each stage chunks: ``diffusion_chunk_size``, ``checkpoint_sublayers`` and ``checkpoint_group`` as set,
    or as chosen from the trace when ``auto`` (a GPU run's cached traces, else minutes of CPU unless ``trace`` is
    False; only configs asking for ``auto`` trace here; a CPU run runs all copies at once without sub-layer or
    grouped checkpointing, not traced)."""
    from models.lddt import lddt_block_rows

    policy = config.model.policy
    chunk = policy.diffusion_chunk_size
    if "auto" in (chunk, policy.checkpoint_sublayers, policy.checkpoint_group):
        from harness.memory.plan import plan_memory

        return [{"start": p.start, "diffusion_chunk_size": p.diffusion_chunk,
                 "source": "auto (traced)" if p.memory is not None else "auto (not traced: all copies on a CPU "
                 "run)" if p.untraced == "CPU run" else "auto (not traced)",
                 "lddt_block_rows": p.lddt_block_rows, "checkpoint_sublayers": p.sublayers,
                 "checkpoint_group": p.group}
                for p in plan_memory(config, stages, trace=trace)]
    sublayers = policy.checkpoint_blocks and policy.checkpoint_sublayers is True
    group = policy.group_in_effect()
    return [{"start": s.start, "diffusion_chunk_size": chunk if chunk is not None and chunk < s.diffusion_batch
             else None, "source": "set",
             "lddt_block_rows": lddt_block_rows(config.data.batch_size, s.diffusion_batch, s.atom_budget),
             "checkpoint_sublayers": sublayers, "checkpoint_group": group}
            for s in stages]


def confidence_adam_eps(config: RunConfig) -> float | None:
    """Adam's ε for the confidence head's parameters: ``train.eps × α_conf``; None when the head does not train.

    The head's inputs are detached (AF3 §4.3.5), so its parameters learn from ``α_conf · L_conf`` alone, and Adam
    is blind to a loss's scale except through ε. At AF3's α_conf = 1e-4 the head's gradients are ~1e-9 (measured:
    55 % of a miniature head's parameters have an RMS gradient under 1e-8), so the literal ε = 1e-8 would damp
    most of its updates many-fold and α_conf would act as a hidden learning-rate cut. Scaling ε by α_conf gives the
    head exactly the update of an unweighted loss at ε, which is what α_conf, a weight among losses, can mean
    for parameters that see only one loss (BENCHMARKS.md, "confidence head")."""
    t = config.train
    if not confidence_trains(config) or t.loss_weights.confidence == 0:
        return None
    return t.eps * t.loss_weights.confidence


def plan_stages(config: RunConfig) -> list[Stage]:
    """The resolved stages of ``config`` (``resolve(config).stages``; their chunking from cached traces only)."""
    return list(resolve(config, trace=False).stages)


def _stages(config: RunConfig, accumulation: int, eps: float | None) -> tuple[Stage, ...]:
    """Split ``[0, max_steps)`` into the configured stages (a single stage when none is given), resolved."""
    t, data = config.train, config.data
    stages = sorted(t.stages, key=lambda s: s.start_step) or [StageConfig(start_step=0)]
    if stages[0].start_step != 0:
        stages = [StageConfig(start_step=0), *stages]
    confidence = confidence_trains(config)
    world = _devices(config) * t.num_nodes if t.global_batch is not None else None
    base_weights = t.loss_weights.model_dump()
    out = []
    for i, s in enumerate(stages):
        end = min(stages[i + 1].start_step if i + 1 < len(stages) else t.max_steps, t.max_steps)
        if end > s.start_step:
            crop = s.crop_size or data.crop_size
            bond, pae = s.weight("bond_weight"), s.weight("pae_weight")
            out.append(Stage(s.start_step, end, crop, s.diffusion_batch or t.diffusion_batch,
                             atom_budget=data.atom_budget_for(crop), bond_weight=bond, pae_weight=pae,
                             loss_weights=base_weights | {"bond": bond, "pae": pae}, confidence=confidence,
                             confidence_adam_eps=eps, accumulation=accumulation, world_size=world))
    return tuple(out)


def resolve(config: RunConfig, source: str = "<config>", *, trace: bool | None = None) -> Recipe:
    """What ``config`` derives, once. Raises ConfigError (``source``: the file or record named in the message)
    listing every problem (each naming its key), and when the config carries a ``derived`` record (read from a
    run folder's config.yaml) that disagrees with what it derives now.

    ``diffusion_chunk_size: auto`` is resolved from the traced training step (``harness.memory.plan.plan_memory``:
    a GPU run's traces cached, else traced; a CPU run's not traced; ``trace=False`` reads the cache only and leaves
    a stage without a cached trace unresolved, for callers that need no chunking, e.g. FLOPs)."""
    t, data, policy = config.train, config.data, config.model.policy
    devices = _devices(config)
    problems, accumulation = [], 1
    if t.global_batch is not None and devices is None:
        problems.append("train.global_batch needs an integer train.devices (with devices: auto the accumulation "
                        "would depend on the machine)")
    elif t.global_batch is not None:
        try:
            accumulation = accumulation_for(config)
        except ValueError as exc:
            problems.append(str(exc))
    problems += _atom_budget_problems(config)
    if problems:
        raise ConfigError(source, problems)
    if t.global_batch is not None:
        global_batch: int | str = t.global_batch
    elif devices is None:
        global_batch = f"{data.batch_size} x devices x {t.num_nodes} (devices: auto)"
    else:
        global_batch = data.batch_size * devices * t.num_nodes
    eps = confidence_adam_eps(config)
    stages = _stages(config, accumulation, eps)
    chunking = stage_chunking(config, stages, trace=trace)
    stages = tuple(replace(stage, chunking={k: v for k, v in chunk.items() if k != "start"})
                   for stage, chunk in zip(stages, chunking, strict=True))
    recipe = Recipe(
        crop_tokens=data.crop_size, atom_budget=data.atom_budget,
        atom_budget_source="set" if data.max_atoms is not None else f"derived: crop x {data.atoms_per_token:g}",
        msa_rows=data.max_msa_rows, per_device_batch=data.batch_size, devices=t.devices, num_nodes=t.num_nodes,
        global_batch=global_batch, accumulation=accumulation, lr=t.lr, warmup_steps=t.warmup_steps,
        trainer_precision=TRAINER_PRECISION, precision=policy.precision_by_module(),
        checkpoint_blocks=policy.checkpoint_blocks, opm_chunk_size=policy.opm_chunk_size,
        diffusion_chunk_size=policy.diffusion_chunk_size, tf32=policy.tf32, stages=stages,
        confidence_adam_eps=eps,
    )
    record = config.derived_record()
    if record is not None and not _record_agrees(record, recipe.as_dict()):
        raise ConfigError(source, ["derived: does not match the settings this config derives (it is a record "
                                   "written by the run; delete the section or restore the config)"])
    return recipe


def _record_agrees(record: Any, now: dict[str, Any]) -> bool:
    """A ``derived`` record agrees with what the config derives now on every key both have (keys the recipe layer
    no longer, or does not yet, derive are not compared); a record sharing no key does not agree."""
    now = json.loads(json.dumps(now))
    record = json.loads(json.dumps(record)) if isinstance(record, dict) else {"derived": record}
    shared = record.keys() & now.keys()
    return bool(shared) and all(record[k] == now[k] for k in shared)


def _atom_budget_problems(config: RunConfig) -> list[str]:
    """A set ``data.max_atoms`` that would bind before a stage's crop (``data.crop_size`` itself is checked by
    the schema)."""
    max_atoms = config.data.max_atoms
    if max_atoms is None:
        return []
    problems = (atom_budget_problem("data.max_atoms", max_atoms, stage.crop_size, f"train.stages.{i}.crop_size")
                for i, stage in enumerate(config.train.stages) if stage.crop_size is not None)
    return [p for p in problems if p]
