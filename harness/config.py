"""One configuration system: pydantic models for a training run, loaded from YAML.

A run config has five sections: ``model`` (a preset plus overrides), ``data``, ``train``, ``tracking`` and
top-level identity (name, seed, runs_dir). Every model forbids unknown keys, so a typo is an error that names
the file and the key path before anything runs. What a config derives (accumulation, atom budgets per stage,
...) and the checks that need it live one layer up, in ``harness.recipe.resolve``, which imports this schema.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from harness.config_files import parse_config, read_yaml, set_dotted
from harness.data.config import DataConfig
from models.config import ModelConfig


class ModelSpec(ModelConfig):
    """``ModelConfig`` built from a named preset, optionally shrunk to a CPU miniature, then overridden.

    YAML: ``model: {preset: medium, miniature: true, triangle_attention: gated}``. Keys given next to the
    preset override the preset's (after miniaturisation).
    """

    preset: str | None = Field(None, description="name in models.presets.PRESETS")
    miniature: bool = Field(False, description="shrink the preset with models.presets.miniaturize")

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or (raw.get("preset") is None and not raw.get("miniature")):
            return raw
        from models.presets import PRESETS, get_preset, miniaturize

        name = raw.get("preset") or "base"
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
        base = get_preset(name)
        if raw.get("miniature"):
            base = miniaturize(base)
        return base.model_dump() | raw

    @field_validator("use_templates")
    @classmethod
    def _no_templates(cls, value: bool) -> bool:
        # The template embedder exists (and is counted by models.accounting), but harness.data builds no
        # template features, so a run with it on would fail at its first forward; say so up front instead.
        if value:
            raise ValueError(
                "use_templates=true is not supported: the data pipeline builds no template features "
                "(template_restype, template_pseudo_beta, template_pseudo_beta_mask); set model.use_templates: false"
            )
        return value

    def architecture(self) -> ModelConfig:
        """The plain ``ModelConfig`` the model is built from (without the preset bookkeeping)."""
        return ModelConfig(**self.model_dump(exclude={"preset", "miniature"}))


STAGE_WEIGHTS = ("bond_weight", "pae_weight")


class StageConfig(BaseModel):
    """A training stage starting at ``start_step`` (SeedFold: crop 384 → 640, diffusion batch 64 → 32).

    Stage loss weights (AF3 SI §4.4, as Protenix): the bond loss (α_bond) and the PAE loss (α_pae) are off in
    initial training and on (1.0) in fine-tuning stages (``fine_tune: true``); ``bond_weight`` / ``pae_weight``
    set them explicitly.
    """

    model_config = ConfigDict(extra="forbid")

    start_step: int = Field(0, ge=0)
    crop_size: int | None = Field(None, ge=8, description="tokens; None keeps data.crop_size")
    diffusion_batch: int | None = Field(None, ge=1)
    fine_tune: bool = Field(False, description="AF3 fine-tuning stage: bond and PAE losses on")
    bond_weight: float | None = Field(None, ge=0.0, description="α_bond; None = 1 if fine_tune else 0")
    pae_weight: float | None = Field(None, ge=0.0, description="α_pae; None = 1 if fine_tune else 0")

    def weight(self, name: str) -> float:
        value = getattr(self, name)
        return value if value is not None else (1.0 if self.fine_tune else 0.0)


class LossWeights(BaseModel):
    """Weights of the loss terms in every stage (AF3 SI §4: 4 x diffusion, 0.03 x distogram, 1e-4 x
    confidence); the stage-dependent α_bond and α_pae live on ``train.stages``."""

    model_config = ConfigDict(extra="forbid")

    diffusion: float = Field(4.0, ge=0.0)
    distogram: float = Field(0.03, ge=0.0)
    confidence: float = Field(1e-4, ge=0.0)


class GuardConfig(BaseModel):
    """Stability guard against gradient explosions (the paper's width > 256 problem)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    spike_factor: float = Field(4.0, gt=1.0, description="loss > factor x running median counts as a spike")
    spike_window: int = Field(50, ge=5, description="steps in the running median")
    spike_patience: int = Field(
        5, ge=1, description="consecutive spiking steps before a rollback (single noisy batches are normal)"
    )
    max_nonfinite: int = Field(3, ge=1, description="consecutive non-finite steps before a rollback")
    lr_factor: float = Field(0.5, gt=0.0, le=1.0, description="learning-rate multiplier after a rollback")
    max_rollbacks: int = Field(3, ge=0)


class ScheduleConfig(BaseModel):
    """The learning-rate schedule after the linear warmup.

    ``af3``: constant, times ``lr_decay_factor`` every ``lr_decay_every`` steps (AF3's recipe). ``wsd``:
    warmup–stable–decay (Hägele et al. 2024; MiniCPM): constant, then over the last ``decay_fraction`` of
    ``max_steps`` a cooldown to 0 (``1-sqrt``: lr × (1 − √p), their best shape; ``linear``: lr × (1 − p), p the
    fraction of the cooldown done). A WSD run is complete only at its last step, and its stable phase is shared
    by every shorter WSD run of the same configuration, which is what lets a study branch short runs off a long
    one (``RunConfig.init_from``).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["af3", "wsd"] = "af3"
    decay_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="wsd: cooldown share of max_steps")
    decay_shape: Literal["1-sqrt", "linear"] = "1-sqrt"

    def decay_start(self, max_steps: int) -> int:
        """First step of the cooldown (``max_steps`` for ``af3``, which has none)."""
        if self.kind != "wsd":
            return max_steps
        return max_steps - max(1, round(self.decay_fraction * max_steps))


class TrainConfig(BaseModel):
    """Optimisation recipe (AF3 / SeedFold defaults, docs/DESIGN.md §2)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(1000, ge=1)
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1.8e-3, gt=0.0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_steps: int = Field(1000, ge=0)
    lr_decay_every: int = Field(50_000, ge=1, description="steps between x lr_decay_factor")
    lr_decay_factor: float = Field(0.95, gt=0.0, le=1.0)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    grad_clip: float = Field(10.0, gt=0.0)
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)
    global_batch: int | None = Field(
        None, ge=1, description="examples per optimizer step over all devices and nodes (paper: 256); "
        "accumulation = global_batch / (data.batch_size x devices x num_nodes); None = no accumulation")
    loss_weights: LossWeights = Field(default_factory=LossWeights)
    diffusion_batch: int = Field(48, ge=1, description="noised copies per example")
    max_cycles: int = Field(4, ge=1, description="recycling: cycles sampled uniformly in 1..max_cycles")
    confidence_loss: bool = Field(False, description="train the confidence head on a detached mini-rollout")
    stages: list[StageConfig] = Field(default_factory=list)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    # Validation (harness/train/validation.py): when, on how much, and how precisely.
    val_every: int | None = Field(250, ge=1, description="validate every this many steps; None = only the "
                                  "log-spaced points (and always at the final step, and at step 0 unless "
                                  "val_at_start is false)")
    val_log_points: int = Field(0, ge=0, description="extra validations at this many log-spaced steps in "
                                "[1, max_steps], so the curve's early part has points too")
    val_at_start: bool = Field(True, description="validate the untrained model at step 0 (the baseline learning "
                               "is measured against); false: a run read only at its end, e.g. a lr scan's")
    val_lddt_every: int = Field(1, ge=1, description="sampled lDDT (expensive) at every n-th scheduled "
                                "validation, and always at the first and the last")
    val_sampling_steps: int = Field(
        20, ge=10, description="sampler steps for validation structures (AF3: 200; below ~10 the sampler's "
        "large early steps leave noise of hundreds of Å and lDDT reads ~0)"
    )
    val_samples: int = Field(2, ge=1, description="sampled structures per validation example (fixed seeds); "
                             ">= 2 also measures the lDDT's own noise")
    val_sigma_nodes: int = Field(7, ge=1, le=32, description="Gauss-Hermite nodes of the sigma quadrature")
    val_copies: int = Field(2, ge=1, description="augmentation + noise draws per example and sigma node; "
                            ">= 2 also measures the val loss's own noise")
    val_seed: int = Field(0, description="seed of the fixed validation draws (crops, MSA rows, rotations, "
                          "noise, sampler); independent of the run's seed so every run sees the same draws")
    val_batches: int | None = Field(None, ge=1, description="validation examples per validation; None = all")
    val_train_probe: bool = Field(True, description="at step 0 and at the end, also score the estimator's "
                                  "losses on as many fixed crops of training structures as the validation set "
                                  "has: the gap between the two is what the run memorised")
    checkpoint_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1, description="most recent checkpoints kept (besides milestones and "
                                  "the newest rollback target)")
    milestone_every: int | None = Field(None, ge=1, description="also keep a checkpoint every N steps, for "
                                        "evaluating along training; None = no periodic milestones")
    milestone_steps: list[int] = Field(default_factory=list, description="extra steps to checkpoint and keep")
    log_every: int = Field(10, ge=1)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int | Literal["auto"] = "auto"
    num_nodes: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1, description="torch CPU threads; None = all cores")

    @model_validator(mode="before")
    @classmethod
    def _stage_weights_only_in_stages(cls, raw: Any) -> Any:
        for key in STAGE_WEIGHTS + ("fine_tune",):
            if isinstance(raw, dict) and key in raw:
                raise ValueError(f"train.{key} is a stage setting: set it on a stage, e.g. "
                                 f"train.stages: [{{start_step: 0, {key}: ...}}]")
            if isinstance(raw, dict) and key in (raw.get("loss_weights") or {}):
                raise ValueError(f"train.loss_weights.{key} is a stage setting: set it on a stage, e.g. "
                                 f"train.stages: [{{start_step: 0, {key}: ...}}]")
        return raw

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        starts = [s.start_step for s in self.stages]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("stages must have strictly increasing start_step")
        b1, b2 = self.betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        outside = [s for s in self.milestone_steps if not 0 < s <= self.max_steps]
        if outside:
            raise ValueError(f"train.milestone_steps {outside} lie outside 1..max_steps ({self.max_steps})")
        cooldown = self.schedule.decay_start(self.max_steps)
        if self.schedule.kind == "wsd" and cooldown < self.warmup_steps:
            raise ValueError(f"train.schedule: the cooldown would start at step {cooldown}, before the warmup ends "
                             f"(train.warmup_steps={self.warmup_steps}); train longer or warm up for fewer steps")
        for i, stage in enumerate(self.stages):
            if stage.start_step >= self.max_steps:
                raise ValueError(f"train.stages.{i}.start_step={stage.start_step} is not before train.max_steps="
                                 f"{self.max_steps}: the stage would never run and its settings be ignored")
            if stage.weight("pae_weight") > 0 and not self.confidence_loss:
                raise ValueError(f"train.stages.{i}: a PAE loss weight needs train.confidence_loss: true "
                                 "(the PAE loss is part of the confidence loss)")
        return self


class TrackingConfig(BaseModel):
    """Where runs are recorded. ``uri=None`` means a sqlite file under ``runs_dir`` (``mlflow.db``).

    Jobs on other nodes cannot open the driver's sqlite file safely, so a SLURM sweep serves it through a detached
    MLflow server (``harness.tracking.server``) bound to ``server_host`` and advertised to jobs as
    ``advertise_host``; or give ``uri`` a database every node reaches (``postgresql://...``, ``http://...``).
    """

    model_config = ConfigDict(extra="forbid")

    uri: str | None = Field(None, description="MLflow tracking URI (http://host:port, sqlite:///path, "
                            "postgresql://...)")
    server_host: str = Field("127.0.0.1", description="address the sweep's MLflow server binds to "
                             "(0.0.0.0 = every interface, for jobs on other nodes)")
    advertise_host: str | None = Field(None, description="address jobs use to reach that server; None = "
                                       "server_host, or this host's name when server_host is 0.0.0.0")
    experiment: str = Field("seedfold-scaling", min_length=1)
    enabled: bool = True
    flush_timeout_s: float = Field(30.0, ge=0.0, description="at the end of training, wait at most this long "
                                   "for MLflow; what is left goes later (`harness tracking sync`)")


# (section, key) of RunConfig that the run key ignores while at its default (see RunConfig.config_hash).
# A dotted key names a field of a nested model (``policy.memory_target_gb`` = model.policy.memory_target_gb).
HASH_NEUTRAL_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("model", "sampler"), ("model", "confidence_pair_readout"), ("train", "schedule"), ("train", "val_at_start"),
    ("model", "policy.memory_target_gb"), ("model", "policy.checkpoint_sublayers"),
    ("model", "policy.checkpoint_group"))
# (section, key, value) of keys added with a default that changes the model of runs recorded before them: those
# runs were made with ``value``. A record without the key reads as ``value`` (``load_record``), and the run key
# omits the key at ``value``, so recorded runs keep their keys and a config that sets ``value`` reproduces them.
LEGACY_VALUES: tuple[tuple[str, str, Any], ...] = (("model", "transformer_block_order", "parallel"),
                                                   ("model", "zero_init_conditioning", False))


class InitFrom(BaseModel):
    """Start from another run's checkpoint instead of from scratch: a *branch* that continues that run's
    trajectory from ``step`` (its WSD stable phase) under this config's own schedule.

    The parent must be the same configuration but for ``train.max_steps`` and what does not change training
    (validation, checkpointing): then the branch is the run this config would have trained from scratch, and so
    it shares its key with one (``init_from`` is not part of the run key, like ``runs_dir``)."""

    model_config = ConfigDict(extra="forbid")

    run_dir: Path = Field(..., description="the parent run's folder")
    step: int = Field(..., ge=1, description="the parent's milestone checkpoint to start from")


class RunConfig(BaseModel):
    """Everything one training run needs; its hash names the run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("run", min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    seed: int = 0
    runs_dir: Path = Path("runs")
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(preset="base", miniature=True))
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    init_from: InitFrom | None = Field(None, description="branch off another run's checkpoint (not in the run key)")

    # A run folder's config.yaml ends in ``derived``: the settings the config derives (``harness.recipe``), as the
    # run recorded them. Output, not input: kept aside here, and ``harness.recipe.resolve`` checks that it agrees.
    _derived: Any = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _derived_is_a_record(cls, raw: Any, handler) -> RunConfig:
        derived = None
        if isinstance(raw, dict) and "derived" in raw:
            raw = dict(raw)
            derived = raw.pop("derived")
        config = handler(raw)
        if derived is not None:
            config._derived = derived
        return config

    def derived_record(self) -> Any:
        """The ``derived`` section this config was read with (None when it had none)."""
        return self._derived

    @model_validator(mode="after")
    def _check_branch(self) -> RunConfig:
        if self.init_from is not None:
            start = self.train.schedule.decay_start(self.train.max_steps)
            if self.train.schedule.kind != "wsd":
                raise ValueError("init_from: a branch needs train.schedule.kind: wsd (its stable phase is what it "
                                 "shares with its parent)")
            if not self.train.warmup_steps <= self.init_from.step <= start:
                raise ValueError(f"init_from.step={self.init_from.step}: a branch starts in the stable phase, "
                                 f"between the end of the warmup ({self.train.warmup_steps}) and its own cooldown "
                                 f"({start})")
        return self

    @model_validator(mode="after")
    def _cueq_can_run(self) -> RunConfig:
        if self.model.kernel_impl == "cueq":
            from models.kernels.cueq import cueq_config_error

            problem = cueq_config_error(self.model.triangle_attention, self.train.accelerator)
            if problem:
                raise ValueError(problem)
        return self

    def config_hash(self) -> str:
        """Stable 12-hex id of what determines the run's results (not where it is written or tracked)."""
        payload = self.model_dump(mode="json", exclude={"runs_dir", "tracking", "name", "init_from"})
        # Keys added after runs were recorded leave the hash alone at their defaults, so those runs keep their keys.
        for section, dotted in HASH_NEUTRAL_DEFAULTS:
            *parents, key = dotted.split(".")
            part, node = getattr(self, section), payload[section]
            for name in parents:
                part, node = getattr(part, name), node[name]
            if getattr(part, key) == type(part).model_fields[key].get_default(call_default_factory=True):
                del node[key]
        for section, key, legacy in LEGACY_VALUES:
            if getattr(getattr(self, section), key) == legacy:
                del payload[section][key]
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def tracking_uri(self) -> str:
        from harness.tracking.store import default_uri

        return self.tracking.uri or default_uri(self.runs_dir)


def load_record(raw: dict[str, Any], source: str) -> RunConfig:
    """The RunConfig of a stored record (a run folder's ``config.yaml``, a checkpoint's config): a key in
    ``LEGACY_VALUES`` that the record predates takes the value its run was made with, not today's default.
    Errors are one ConfigError naming ``source``."""
    raw = dict(raw)
    for section, key, legacy in LEGACY_VALUES:
        part = raw.get(section)
        if isinstance(part, dict) and key not in part:
            raw[section] = {**part, key: legacy}
    return parse_config(RunConfig, raw, source)


def load_run_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a run config from YAML, with optional dotted-key overrides (``{"train.lr": 1e-3}``)."""
    raw = read_yaml(path)
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    return parse_config(RunConfig, raw, str(path))
