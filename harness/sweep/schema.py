"""The sweep YAML schema (pydantic). Expansion into runs lives in ``expand.py``.

```yaml
name: width_vs_depth                 # folder <runs_dir>/<name>/, MLflow experiment (unless set in base)
base: {model: {preset: base}, train: {max_steps: 100000}}   # a RunConfig mapping shared by every run
runs:                                # named runs: dotted-key overrides of base
  base: {}
  medium: {model.preset: medium}
grid: {train.lr: [1.0e-3, 1.8e-3]}   # Cartesian axes (product with runs and seeds)
zip: {train.lr: [1.0e-3, 1.8e-3], train.warmup_steps: [3000, 1000]}   # paired axes, varied together
seeds: [0, 1]
profiles:                            # chosen with --profile; `default_profile` when not given
  paper: {extends: paper}            # sweeps/profiles/paper.yaml as it is
  mini:                              # sweeps/profiles/mini.yaml with this sweep's deltas
    extends: mini
    overrides: {train.max_steps: 300}
    runs: {medium: {train.lr: 2.0e-3}}
  local: {overrides: {model.miniature: true}, executor: {kind: local}}   # a profile of this sweep only
executor: {kind: auto, parallelism: null, max_retries: 2, warm_start: true, slurm_profile: single_gpu, slurm: {}}
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from harness.config import ScheduleConfig

Overrides = dict[str, Any]


class ExecutorSettings(BaseModel):
    """Where runs execute. ``auto`` = SLURM when ``sbatch`` answers, else local."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["auto", "local", "slurm"] = "auto"
    parallelism: int | None = Field(
        None, ge=1, description="runs at once; None = 1 locally (2 torch jobs on 2 cores slow each other "
                                "> 2x), the profile's array_parallelism on SLURM")
    max_retries: int = Field(2, ge=0,
                             description="resubmissions of a failed run (it resumes from its checkpoint)")
    local_timeout_min: int = Field(24 * 60, ge=1, description="wall-clock limit of a local run, minutes")
    warm_start: bool = Field(True, description="local jobs (sweep runs, tune workers) fork from a process that "
                             "imported torch, Lightning, MLflow and the harness once (harness.dispatch.warm), not a "
                             "fresh interpreter each")
    slurm_profile: str | None = Field("single_gpu", description="name of slurm/profiles/<name>.yaml")
    slurm: dict[str, Any] = Field(default_factory=dict,
                                  description="SlurmResources keys overriding the profile")

    def merged(self, patch: dict[str, Any]) -> ExecutorSettings:
        """These settings with a profile's partial ``executor`` mapping on top (``slurm`` merged by key)."""
        data = self.model_dump()
        for key, value in patch.items():
            if key == "slurm" and isinstance(value, dict):
                data["slurm"] = data["slurm"] | value
            else:
                data[key] = value
        return ExecutorSettings.model_validate(data)


class LrScan(BaseModel):
    """A short learning-rate scan per configuration before the study: each configuration's ``train.lr`` times
    every factor, trained to the scan budget, and the study then runs each configuration at the minimum of a
    parabola fitted to its final ``val/loss`` against log lr (``harness.sweep.lr_choice``)."""

    model_config = ConfigDict(extra="forbid")

    factors: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0], min_length=3,
                                 description="multiples of each configuration's train.lr")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    budget: float | None = Field(None, gt=0, description="training FLOPs of every scan run; None = the study's "
                                 "smallest FLOPs budget")

    @field_validator("factors")
    @classmethod
    def _factors(cls, value: list[float]) -> list[float]:
        if any(f <= 0 for f in value) or len(set(value)) != len(value):
            raise ValueError(f"factors must be distinct and positive, got {value}")
        return sorted(value)


class StudyDesign(BaseModel):
    """Compare configurations on complete runs: every run's learning-rate schedule *ends* at a budget.

    For each FLOPs budget C every configuration trains C / (its analytic FLOPs per step) steps; for each step
    budget it trains that many steps. Schedules are warmup–stable–decay: a configuration's longest run is trained
    once and its shorter runs branch off it at the start of their own cooldown (``harness.sweep.study``).
    """

    model_config = ConfigDict(extra="forbid")

    budgets: list[float] = Field(default_factory=list, description="training FLOPs (forward + backward) at which "
                                 "every configuration's schedule ends: the isoFLOP comparison")
    steps: list[int] = Field(default_factory=list, description="optimizer steps at which every configuration's "
                             "schedule ends: the matched-steps comparison (the paper's framing)")
    decay_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="cooldown share of each run's steps")
    decay_shape: Literal["1-sqrt", "linear"] = "1-sqrt"
    lr: Literal["scan", "config"] = Field(
        "config", description="scan: each configuration at the lr its scan chose; config: the runs' own train.lr "
        "(the paper's hand-set rates, for a faithful reproduction)")
    scan: LrScan = Field(default_factory=LrScan)
    max_steps: int = Field(100_000, ge=1, description="a budget that needs more steps than this for some "
                           "configuration is rejected")

    @property
    def schedule(self) -> ScheduleConfig:
        """The schedule every run of the study trains on (``train.schedule``)."""
        return ScheduleConfig(kind="wsd", decay_fraction=self.decay_fraction, decay_shape=self.decay_shape)

    @field_validator("budgets", "steps")
    @classmethod
    def _distinct_positive(cls, value: list) -> list:
        if any(v <= 0 for v in value) or len(set(value)) != len(value):
            raise ValueError(f"must be distinct and positive, got {value}")
        return sorted(value)

    @model_validator(mode="after")
    def _some_budget(self) -> StudyDesign:
        if not self.budgets and not self.steps:
            raise ValueError("a study needs budgets (FLOPs) or steps")
        if self.lr == "scan" and self.scan.budget is None and not self.budgets:
            raise ValueError("lr: scan needs a FLOPs budget for the scan runs (study.budgets or study.scan.budget)")
        return self


class ProfileFile(BaseModel):
    """A profile file ``sweeps/profiles/<name>.yaml``: a recipe shared by sweeps, which name it with ``extends``.
    It may itself build on another profile file (``extends``) and state only what differs."""

    model_config = ConfigDict(extra="forbid")

    extends: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-]+$",
                                description="the profile file (sweeps/profiles/<name>.yaml) this one builds on")
    description: str = ""
    overrides: Overrides = Field(default_factory=dict, description="dotted keys applied to every run")
    seeds: list[int] | None = Field(None, min_length=1, description="replace the sweep's seeds (None keeps them)")
    executor: dict[str, Any] = Field(default_factory=dict, description="partial ExecutorSettings")
    study: StudyDesign | None = Field(None, description="replace the sweep's study design (None keeps it)")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {value}")
        return value


class SweepProfile(ProfileFile):
    """A named variant of the whole sweep (``paper``: real sizes; ``mini``: CPU miniatures): a profile file it
    ``extends`` with this sweep's deltas on top, including overrides per named run.

    After loading (``harness.sweep.profiles``) ``extends`` is resolved: the fields hold the merged profile and
    ``origins`` says where each of its settings was written."""

    runs: dict[str, Overrides] = Field(default_factory=dict, description="per named run, after `overrides`")
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)  # dotted override / "study" -> where it is set

    def origin(self, key: str, default: str) -> str:
        """Where override ``key`` (or ``"study"``) of the resolved profile was written; ``default`` if here."""
        return self._origins.get(key, default)


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict, description="a RunConfig mapping")
    runs: dict[str, Overrides] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    profiles: dict[str, SweepProfile] = Field(default_factory=dict)
    default_profile: str | None = None
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    study: StudyDesign | None = Field(None, description="complete runs at designed budgets (harness.sweep.study)")

    @field_validator("runs", "profiles")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        import re

        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
                raise ValueError(f"name {name!r} may contain only letters, digits, '_', '.', '-'")
        return value

    @field_validator("grid")
    @classmethod
    def _grid_axes(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"axis {key!r} has no values")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {value}")
        return value

    @model_validator(mode="after")
    def _check(self) -> SweepFile:
        lengths = {key: len(values) for key, values in self.zip.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"zip axes must have equal lengths, got {lengths}")
        if any(n == 0 for n in lengths.values()):
            raise ValueError("zip axes must not be empty")
        both = set(self.grid) & set(self.zip)
        if both:
            raise ValueError(f"keys {sorted(both)} appear in both grid and zip")
        if self.default_profile is not None and self.default_profile not in self.profiles:
            raise ValueError(f"default_profile {self.default_profile!r} is not one of "
                             f"{sorted(self.profiles)}")
        for pname, profile in self.profiles.items():
            unknown = set(profile.runs) - set(self.runs)
            if unknown:
                raise ValueError(f"profiles.{pname}.runs names unknown runs {sorted(unknown)}; "
                                 f"runs are {sorted(self.runs)}")
        return self
