"""What the `harness sweep` and `harness status` commands do, callable from Python (tests, notebooks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from harness.dispatch import executor as ex
from harness.dispatch.cluster import default_executor_kind
from harness.dispatch.job import TRAIN_ENTRYPOINT
from harness.dispatch.ledger import Ledger
from harness.dispatch.profiles import load_resources
from harness.dispatch.resources import SlurmResources
from harness.errors import ConfigError
from harness.sweep.driver import SweepDriver, SweepOutcome, sweep_dir_of
from harness.sweep.expand import choose_profile, executor_settings, expand_runs, load_sweep
from harness.sweep.progress import RunProgress, read_progress
from harness.sweep.schema import ExecutorSettings, SweepFile
from harness.sweep.settings import settings, settings_table
from harness.sweep.spec import RunSpec
from harness.sweep.study import StudyPlan
from harness.sweep.table import plan_table, progress_table, study_table


@dataclass
class PreparedSweep:
    """A sweep validated end to end, nothing submitted yet."""

    source: str
    sweep: SweepFile
    profile: str | None
    specs: list[RunSpec]
    settings: ExecutorSettings
    kind: str  # "local" | "slurm"
    resources: SlurmResources | None  # for kind "slurm"
    study: StudyPlan | None = None  # the study's plan when the sweep has a study design
    extra: dict[str, Any] | None = None
    lr_source: str | None = None
    gpu_memory_gb: float | None = None  # --gpu-memory, else the SLURM profile's gpu_memory_gb (kind "slurm")

    @property
    def where(self) -> str:
        if self.kind == "slurm" and self.resources is not None:
            return self.resources.describe()
        start = "warm start (forked from a zygote)" if self.settings.warm_start else "a fresh interpreter per run"
        return f"local, {self.settings.parallelism or 1} at a time, {start}"


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so the driver's cleanup (the MLflow server it started) runs; queued and
    running jobs are left alone and a rerun of the sweep attaches to them."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def prepare(file: str | Path, *, profile: str | None = None, executor: str | None = None,
            parallelism: int | None = None, extra: dict[str, Any] | None = None,
            lr_source: str | None = None, gpu_memory_gb: float | None = None) -> PreparedSweep:
    """Load, expand and validate every run and the executor settings; raises ConfigError before any submit.

    ``lr_source``: for a study, "scan" or "config" (the paper's hand-set rates) instead of its design's.
    ``gpu_memory_gb`` (``--gpu-memory``) states one GPU's memory, else the SLURM profile's ``gpu_memory_gb``."""
    source = str(file)
    sweep = load_sweep(file)
    specs, plan = expand_runs(sweep, profile, source=source, extra=extra, lr_source=lr_source)
    profile_name, prof = choose_profile(sweep, profile, source)
    settings = executor_settings(sweep, prof, source)
    if parallelism is not None:
        settings = settings.model_copy(update={"parallelism": parallelism})
    kind = executor or settings.kind
    if kind not in ("auto", "local", "slurm"):
        raise ConfigError("--executor", [f"expected local or slurm, got {kind!r}"])
    if kind == "auto":
        kind = default_executor_kind()
    resources = None
    if kind == "slurm":
        resources = load_resources(settings.slurm_profile, settings.slurm, source=f"{source}: executor.slurm")
        _check_devices(specs, resources, source)
        if gpu_memory_gb is None:
            gpu_memory_gb = resources.gpu_memory_gb
    return PreparedSweep(source, sweep, profile_name, specs, settings, kind, resources, plan, extra, lr_source,
                         gpu_memory_gb)


def memory_plans(prepared: PreparedSweep) -> dict[str, list]:
    """Run label -> the traced memory plan of each stage (``harness.memory.plan``), one trace cache for all; GPU
    runs only (a CPU run needs no GPU memory)."""
    from harness.memory.cache import TraceCache
    from harness.memory.plan import gpu_profile, plan_memory
    from harness.recipe import plan_stages

    cache = TraceCache()
    return {spec.label: plan_memory(spec.config, plan_stages(spec.config), cache)
            for spec in prepared.specs if gpu_profile(spec.config)}


def check_memory_fit(prepared: PreparedSweep) -> None:
    """Refuse (``MemoryFitError``, one line per run) runs whose traced step does not fit the stated GPU memory."""
    from harness.memory.fit import check_fit

    if prepared.gpu_memory_gb is not None:
        check_fit(memory_plans(prepared), prepared.gpu_memory_gb)


def _check_devices(specs: list[RunSpec], resources: SlurmResources, source: str) -> None:
    """Lightning needs devices == tasks per node and num_nodes == nodes under SLURM (docs/DESIGN.md §6)."""
    problems = []
    for spec in specs:
        t = spec.config.train
        devices = resources.tasks_per_node if t.devices == "auto" else t.devices
        if devices != resources.tasks_per_node or t.num_nodes != resources.nodes:
            problems.append(f"run {spec.label}: train.devices={t.devices}, train.num_nodes={t.num_nodes} but "
                            f"the SLURM profile gives {resources.tasks_per_node} task(s) per node on "
                            f"{resources.nodes} node(s); make them equal")
    if problems:
        raise ConfigError(source, problems)


def dry_run_table(prepared: PreparedSweep):
    """The settings the sweep writes and where each was written; the runs with their sizes and recipe; for a
    study also, per budget and configuration, the steps, the schedule, where each run starts and its lr (a rich
    Group of tables)."""
    from rich.console import Group

    plan = prepared.study
    pending = "" if plan is None or plan.runs is not None else " (the study's runs follow once the lr scan is done)"
    title = (f"sweep {prepared.sweep.name}, profile {prepared.profile or '-'}: {len(prepared.specs)} runs "
             f"(nothing started){pending}")
    table = plan_table(prepared.specs, prepared.where, title, gpu_memory_gb=prepared.gpu_memory_gb)
    rows = settings(prepared.sweep, prepared.profile, prepared.source, prepared.extra, prepared.lr_source)
    if plan is None:
        return Group(settings_table(rows), table)
    return Group(settings_table(rows), table, study_table(plan))


def run_prepared(prepared: PreparedSweep, *, poll_s: float = 2.0, console: Console | None = None,
                 entrypoint: str | Callable[..., Any] = TRAIN_ENTRYPOINT) -> SweepOutcome:
    """Dispatch and watch until every run finished or failed for good, showing a live table. A study whose
    lr scan has not run yet runs the scan first, chooses each configuration's rate, then runs the study."""
    console = console or Console()
    plan = prepared.study
    if plan is not None and plan.runs is None:
        outcome = _dispatch(prepared, prepared.specs, poll_s, console, entrypoint)
        if outcome.failed:
            return outcome
        from harness.sweep.lr_choice import choose, write_choice

        chosen = choose(plan.scan)
        if chosen is None:
            raise ConfigError(prepared.source, ["the lr scan did not finish every run; rerun the sweep"])
        write_choice(sweep_dir_of(plan.scan), chosen)
        for conf, (lr, note) in chosen.items():
            console.print(f"lr of {conf}: {lr:.2g} ({note})")
        prepared = prepare(prepared.source, profile=prepared.profile, executor=prepared.kind,
                           parallelism=prepared.settings.parallelism, extra=prepared.extra,
                           lr_source=prepared.lr_source)
        scan_outcome = outcome
        outcome = _dispatch(prepared, prepared.specs, poll_s, console, entrypoint)
        outcome.skipped = [k for k in outcome.skipped if k not in scan_outcome.finished]
        outcome.finished = scan_outcome.finished + outcome.finished
        outcome.submitted += scan_outcome.submitted
        return outcome
    return _dispatch(prepared, prepared.specs, poll_s, console, entrypoint)


def _dispatch(prepared: PreparedSweep, specs: list[RunSpec], poll_s: float, console: Console,
              entrypoint: str | Callable[..., Any]) -> SweepOutcome:
    driver = SweepDriver(specs, prepared.settings, prepared.kind, resources=prepared.resources,
                         entrypoint=entrypoint, poll_s=poll_s)
    title = f"sweep {prepared.sweep.name} ({prepared.where})"
    with Live(console=console, auto_refresh=False, transient=False) as live:
        def show(d: SweepDriver) -> None:
            live.update(progress_table(d.progress(), title, with_log=False), refresh=True)

        return driver.run(on_update=show)


def cancel_sweep(specs: list[RunSpec]) -> int:
    """Cancel every queued or running job recorded for these runs; returns how many."""
    ledger = Ledger.load(sweep_dir_of(specs))
    keys = {spec.key for spec in specs}
    n = 0
    for key, record in ledger.jobs.items():
        if key in keys and ex.job_active(record.executor, record.job_id):
            ex.cancel_job(record.executor, record.job_id)
            n += 1
    return n


def sweep_progress(specs: list[RunSpec]) -> list[RunProgress]:
    """State of each run from its folder and the ledger (for `harness status`)."""
    if not specs:
        return []
    ledger = Ledger.load(sweep_dir_of(specs))
    active_slurm = ex.active_slurm_jobs() if any(r.executor == "slurm" for r in ledger.jobs.values()) else {}
    rows = []
    for spec in specs:
        record = ledger.jobs.get(spec.key)
        active = None
        if record is not None:
            active = record.job_id in active_slurm if record.executor == "slurm" \
                else ex.local_job_active(record.job_id)
        rows.append(read_progress(spec, record, active=active))
    return rows


def progress_view(specs: list[RunSpec], title: str):
    return progress_table(sweep_progress(specs), title)
