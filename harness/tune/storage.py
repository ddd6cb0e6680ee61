"""Optuna storage shared by the workers of a study: a journal file (default) or an RDB URL.

docs/DESIGN.md §6: both held concurrent SLURM workers with no lost or duplicate trials *provided the study was created
once before workers start*; so the driver calls ``create_study_once`` and workers only ``load_study``.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from harness.tune.schema import TuneFile

JOURNAL_FILE = "optuna.journal"


def storage_url(tune: TuneFile, study_dir: Path) -> str:
    """An RDB URL, or ``journal:<path>`` for the journal-file default."""
    return tune.storage or f"journal:{(study_dir / JOURNAL_FILE).resolve()}"


def open_storage(url: str) -> optuna.storages.BaseStorage | str:
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return url


def sampler(tune: TuneFile, worker: int = 0) -> optuna.samplers.BaseSampler:
    # Distinct seeds per worker, or concurrent workers would propose the same first points.
    seed = None if tune.sampler.seed is None else tune.sampler.seed + worker
    if tune.sampler.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(tune: TuneFile) -> optuna.pruners.BasePruner:
    if tune.pruner.kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=tune.pruner.n_startup_trials,
                                       n_warmup_steps=tune.pruner.n_warmup_steps)


def create_study_once(tune: TuneFile, url: str) -> optuna.Study:
    """Create (or load) the study in the driver, before any worker starts."""
    return optuna.create_study(study_name=tune.name, storage=open_storage(url), direction=tune.direction,
                               load_if_exists=True)


def load_study(tune: TuneFile, url: str, worker: int) -> optuna.Study:
    return optuna.load_study(study_name=tune.name, storage=open_storage(url), sampler=sampler(tune, worker),
                             pruner=pruner(tune))
