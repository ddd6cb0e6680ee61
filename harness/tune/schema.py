"""The tune YAML schema.

```yaml
name: lr_search                          # study name; folder <runs_dir>/<name>/
base: {model: {preset: base, miniature: true}, train: {max_steps: 300, val_every: 100}}
metric: val/loss                         # a key of the run's metrics.csv / state.json last_metrics
direction: minimize
n_trials: 8                              # trials in total, shared by the workers
workers: 2                               # concurrent worker jobs (local processes or SLURM jobs)
space:
  train.lr: {type: float, low: 3.0e-4, high: 3.0e-3, log: true}
  train.warmup_steps: {type: int, low: 10, high: 100}
  train.betas.1: {type: float, low: 0.9, high: 0.999}   # an index into a list/tuple field (beta2)
  model.triangle_attention: {type: categorical, choices: [vanilla, gated]}
pruner: {kind: median, n_startup_trials: 2, n_warmup_steps: 0}
sampler: {kind: tpe, seed: 0}
storage: null                            # null: journal file <runs_dir>/<name>/optuna.journal; or an RDB URL
executor: {kind: auto, slurm_profile: cpu_small}
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.sweep.schema import ExecutorSettings


class ParamSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> ParamSpace:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty `choices` list")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"a {self.type} parameter needs `low` and `high`")
            if self.low >= self.high:
                raise ValueError(f"low ({self.low}) must be < high ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError("log scale needs low > 0")
        return self


class PrunerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["median", "none"] = "median"
    n_startup_trials: int = Field(2, ge=0, description="trials that are never pruned")
    n_warmup_steps: int = Field(0, ge=0, description="steps before a trial can be pruned")


class SamplerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["tpe", "random"] = "tpe"
    seed: int | None = 0


class TuneFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict, description="a RunConfig mapping")
    metric: str = Field("val/loss", min_length=1)
    direction: Literal["minimize", "maximize"] = "minimize"
    n_trials: int = Field(..., ge=1)
    workers: int = Field(1, ge=1)
    space: dict[str, ParamSpace] = Field(..., min_length=1)
    pruner: PrunerSettings = Field(default_factory=PrunerSettings)
    sampler: SamplerSettings = Field(default_factory=SamplerSettings)
    storage: str | None = Field(None, description="RDB URL; None = a journal file in the study folder")
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    poll_s: float = Field(2.0, gt=0, description="seconds between checks of a trial's metrics")

    @model_validator(mode="after")
    def _check(self) -> TuneFile:
        if self.workers > self.n_trials:
            raise ValueError(f"workers ({self.workers}) must not exceed n_trials ({self.n_trials})")
        return self

    def quotas(self) -> list[int]:
        """Trials per worker, summing to ``n_trials`` exactly (no worker can overshoot the budget)."""
        q, r = divmod(self.n_trials, self.workers)
        return [q + (1 if i < r else 0) for i in range(self.workers)]
