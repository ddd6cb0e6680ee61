"""A study's plan: which runs make every configuration complete its schedule at every budget.

A sweep with a ``study`` block (``harness.sweep.schema.StudyDesign``) is not read part-way through long runs.
For each FLOPs budget C, each configuration trains round(C / its analytic FLOPs per step) steps; for each step
budget S, S steps; and each such run's warmup–stable–decay schedule ends there. Per configuration and seed the
longest run (the *trunk*) is trained from scratch, keeping a checkpoint at the start of every shorter run's
cooldown, and each shorter run is a *branch* that starts from that checkpoint and trains only its cooldown
(``harness.train.branch``): one trajectory plus one cooldown per extra budget instead of one run per budget.

With ``lr: scan`` the study is preceded by a learning-rate scan per configuration at the scan budget
(``harness.sweep.lr_choice``), and every study run uses its configuration's chosen rate.

Runs are named ``<configuration>-lr<lr>-S<steps>-s<seed>``: a scan run and a study run of the same
configuration, rate, length and seed are the same run, trained once: the study reads the scan's run (which
validates at its last step only, ``SCAN_VALIDATION``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from analysis.lr_scan import round_lr
from harness.config import RunConfig
from harness.config_files import format_validation_error
from harness.errors import ConfigError
from harness.sweep.schema import StudyDesign
from harness.sweep.spec import RunSpec
from harness.tracking import names

TRUNK, BRANCH, SCAN = "trunk", "branch", "scan"


@dataclass(frozen=True)
class Budget:
    """A point a schedule ends at: ``kind`` "flops" (training FLOPs) or "steps"."""

    kind: str
    value: float

    @property
    def tag(self) -> str:
        return f"flops:{self.value:.4g}" if self.kind == "flops" else f"steps:{int(self.value)}"

    def __str__(self) -> str:
        return f"{self.value:.3g} FLOPs" if self.kind == "flops" else f"{int(self.value)} steps"


def budgets_of(design: StudyDesign) -> list[Budget]:
    return [Budget("flops", c) for c in design.budgets] + [Budget("steps", s) for s in design.steps]


def parse_budget_tag(tag: str) -> list[Budget]:
    """``"flops:2e+11;steps:400"`` → budgets (the inverse of the study's run tag)."""
    out = []
    for part in filter(None, (p.strip() for p in tag.split(";"))):
        kind, _, value = part.partition(":")
        out.append(Budget(kind, float(value)))
    return out


@dataclass(frozen=True)
class Configuration:
    """One configuration of the sweep (a named run and grid point) with its per-seed base specs."""

    name: str
    specs: tuple[RunSpec, ...]  # one per seed, as expanded from the sweep

    @property
    def config(self) -> RunConfig:
        return self.specs[0].config

    @property
    def flops_per_step(self) -> float:
        from harness.sizes import estimate

        return estimate(self.config, memory=False).flops_per_step  # FLOPs only: no memory trace


def configurations(specs: list[RunSpec]) -> list[Configuration]:
    """Group the expanded specs by configuration (their label without the seed suffix)."""
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        suffix = f"-s{spec.config.seed}"
        name = spec.label[: -len(suffix)] if spec.label.endswith(suffix) and spec.label != suffix else spec.label
        groups.setdefault(name, []).append(spec)
    return [Configuration(name, tuple(group)) for name, group in groups.items()]


def steps_for(conf: Configuration, budget: Budget) -> int:
    if budget.kind == "steps":
        return int(budget.value)
    return max(1, round(budget.value / conf.flops_per_step))


@dataclass
class StudyPlan:
    """Every run of a study: the scan (``scan``) and the study proper (``runs``, None until the lrs are known),
    and per configuration the lr in effect (``lrs``) and where it came from (``lr_note``)."""

    design: StudyDesign
    budgets: list[Budget]
    scan: list[RunSpec] = field(default_factory=list)
    runs: list[RunSpec] | None = None
    lrs: dict[str, float] = field(default_factory=dict)
    lr_note: dict[str, str] = field(default_factory=dict)
    steps: dict[tuple[str, Budget], int] = field(default_factory=dict)  # (configuration, budget) -> steps

    @property
    def specs(self) -> list[RunSpec]:
        """Every run known so far, scan first (a study run identical to a scan run appears once)."""
        seen, out = set(), []
        for spec in [*self.scan, *(self.runs or [])]:
            if spec.key not in seen:
                seen.add(spec.key)
                out.append(spec)
        return out


# A scan run is read by its final val/loss only (harness.sweep.lr_choice, analysis.lr_scan): it validates at its
# last step and nowhere else (each validation of a miniature costs ~5 CPU s). Validation draws from its own seeded
# generators, so this changes no training step.
SCAN_VALIDATION = {"val_at_start": False, "val_every": None, "val_log_points": 0}


def _study_config(base: RunConfig, *, lr: float, steps: int, design: StudyDesign, milestones: list[int],
                  init_from: tuple[Path, int] | None, where: str, scan: bool = False) -> RunConfig:
    raw = base.model_dump(mode="json")
    raw.pop("init_from", None)
    train = raw["train"]
    train.update(lr=lr, max_steps=steps,
                 schedule=design.schedule.model_dump(mode="json"),
                 milestone_steps=sorted(set(train.get("milestone_steps") or []) | set(milestones)))
    if scan:
        train.update(SCAN_VALIDATION)
    train["milestone_steps"] = [m for m in train["milestone_steps"] if m <= steps]
    if init_from is not None:
        raw["init_from"] = {"run_dir": str(init_from[0]), "step": init_from[1]}
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(where, format_validation_error(err)) from None


def _budget_problems(conf: Configuration, budget: Budget, steps: int, design: StudyDesign) -> list[str]:
    """One line per reason this configuration cannot complete a schedule at this budget."""
    t = conf.config.train
    cooldown = design.schedule.decay_start(steps)
    cost = f" ({conf.flops_per_step:.3g} FLOPs per step)" if budget.kind == "flops" else ""
    if cooldown < t.warmup_steps:
        return [f"budget {budget}: {conf.name} gets {steps} steps{cost}, too few for its warmup of "
                f"{t.warmup_steps} steps before a cooldown of {steps - cooldown}; raise the budget or shorten "
                "the warmup"]
    if steps > design.max_steps:
        return [f"budget {budget}: {conf.name} needs {steps} steps{cost}, above the study's max_steps "
                f"{design.max_steps}"]
    return []


def plan_study(specs: list[RunSpec], design: StudyDesign, *, sweep: str, profile: str | None, source: str,
               lr_source: str | None = None, chosen: dict[str, tuple[float, str]] | None = None) -> StudyPlan:
    """The study's runs. ``specs``: the sweep expanded as usual (configurations × seeds, lr, warmup, ...).
    ``lr_source`` overrides ``design.lr``; ``chosen``: configuration → (lr, note) from a finished scan
    (``harness.sweep.lr_choice``), without which a scan study lists its scan runs only.

    Raises ConfigError with one line per budget and configuration that cannot complete a schedule."""
    mode = lr_source or design.lr
    plan = StudyPlan(design, budgets_of(design))
    confs = configurations(specs)
    problems: list[str] = []
    for conf in confs:
        for budget in plan.budgets:
            plan.steps[(conf.name, budget)] = steps = steps_for(conf, budget)
            problems += _budget_problems(conf, budget, steps, design)
    scan_budget = None
    if mode == "scan":
        scan_budget = Budget("flops", design.scan.budget or min(design.budgets))
        for conf in confs:
            steps = steps_for(conf, scan_budget)
            problems += [f"scan: {p}" for p in _budget_problems(conf, scan_budget, steps, design)]
    if problems:
        raise ConfigError(source, problems)

    common = {names.TAG_PROFILE: profile or "", names.TAG_STUDY_LR: mode}
    if mode == "scan":
        for conf in confs:
            steps = steps_for(conf, scan_budget)
            for factor in design.scan.factors:
                lr = round_lr(conf.config.train.lr * factor)
                for seed in design.scan.seeds:
                    base = _with_seed(conf, seed)
                    config = _study_config(base, lr=lr, steps=steps, design=design, milestones=[], init_from=None,
                                           where=f"{source}: scan of {conf.name}", scan=True)
                    plan.scan.append(_spec(sweep, conf, config, seed, lr, steps, (scan_budget,), SCAN, None, common))
        if chosen is None or any(conf.name not in chosen for conf in confs):
            return plan
        for conf in confs:
            plan.lrs[conf.name], plan.lr_note[conf.name] = chosen[conf.name]
    else:
        for conf in confs:
            plan.lrs[conf.name] = conf.config.train.lr
            plan.lr_note[conf.name] = "the configuration's own train.lr"
    plan.runs = []
    scanned = {(s.tags[names.TAG_STUDY_CONFIG], s.config.train.lr, s.config.train.max_steps, s.config.seed): s
               for s in plan.scan}
    for conf in confs:
        by_steps: dict[int, list[Budget]] = {}
        for budget in plan.budgets:
            by_steps.setdefault(plan.steps[(conf.name, budget)], []).append(budget)
        lengths = sorted(by_steps)
        trunk_steps = lengths[-1]
        starts = {s: design.schedule.decay_start(s) for s in lengths}
        for seed in sorted({spec.config.seed for spec in conf.specs}):
            base = _with_seed(conf, seed)
            lr = plan.lrs[conf.name]
            where = f"{source}: {conf.name}"
            trunk_cfg = _study_config(base, lr=lr, steps=trunk_steps, design=design,
                                      milestones=[starts[s] for s in lengths[:-1]], init_from=None, where=where)
            trunk = _spec(sweep, conf, trunk_cfg, seed, lr, trunk_steps, tuple(by_steps[trunk_steps]), TRUNK, None,
                          common)
            if len(lengths) == 1:  # no branch needs its milestones: the scan's run, if it trained this one
                trunk = scanned.get((conf.name, lr, trunk_steps, seed), trunk)
            plan.runs.append(trunk)
            for s in lengths[:-1]:
                cfg = _study_config(base, lr=lr, steps=s, design=design, milestones=[],
                                    init_from=(trunk.run_dir, starts[s]), where=where)
                plan.runs.append(scanned.get((conf.name, lr, s, seed)) or _spec(
                    sweep, conf, cfg, seed, lr, s, tuple(by_steps[s]), BRANCH, (trunk.key, starts[s]), common))
    return plan


def _with_seed(conf: Configuration, seed: int) -> RunConfig:
    for spec in conf.specs:
        if spec.config.seed == seed:
            return spec.config
    return conf.config.model_copy(update={"seed": seed})


def _spec(sweep: str, conf: Configuration, config: RunConfig, seed: int, lr: float, steps: int,
          budgets: tuple[Budget, ...], role: str, after: tuple[str, int] | None, common: dict[str, str]) -> RunSpec:
    label = f"{conf.name}-lr{lr:.2g}-S{steps}-s{seed}"
    config = config.model_copy(update={"name": label})
    run_dir = (config.runs_dir / sweep / f"{label}-{config.config_hash()}").resolve()
    tags = common | {names.TAG_STUDY_CONFIG: conf.name, names.TAG_STUDY_ROLE: role,
                     names.TAG_STUDY_BUDGETS: ";".join(b.tag for b in budgets)}
    return RunSpec(sweep=sweep, label=label, config=config, run_dir=run_dir, axes=dict(conf.specs[0].axes),
                   tags=tags, after=after)


def describe(plan: StudyPlan) -> list[dict[str, Any]]:
    """Rows of the dry-run's study table: per budget and configuration, the steps, the schedule, where the run
    starts and the lr (one row per configuration and budget; seeds share it)."""
    rows = []
    design = plan.design
    by_label = {}
    for spec in plan.runs or []:
        by_label.setdefault((spec.tags[names.TAG_STUDY_CONFIG], spec.config.train.max_steps), spec)
    for budget in plan.budgets:
        for (conf_name, b), steps in plan.steps.items():
            if b != budget:
                continue
            spec = by_label.get((conf_name, steps))
            cooldown = design.schedule.decay_start(steps)
            if spec is None:
                start = "after the lr scan"
            elif spec.after is None:
                start = "from scratch (trunk)"
            else:
                start = f"branch at step {spec.after[1]}"
            rows.append({"budget": str(budget), "configuration": conf_name, "steps": steps,
                         "schedule": f"warmup {_warmup(plan, conf_name)}, stable to {cooldown}, "
                                     f"{design.decay_shape} cooldown to {steps}",
                         "starts": start, "lr": _lr_text(plan, conf_name)})
    return rows


def _warmup(plan: StudyPlan, conf_name: str) -> int:
    for spec in [*(plan.runs or []), *plan.scan]:
        if spec.tags[names.TAG_STUDY_CONFIG] == conf_name:
            return spec.config.train.warmup_steps
    return 0


def _lr_text(plan: StudyPlan, conf_name: str) -> str:
    if conf_name in plan.lrs:
        return f"{plan.lrs[conf_name]:.2g} ({plan.lr_note[conf_name]})"
    return "chosen by the scan (not run yet)"


def flops_label(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "n/a"
