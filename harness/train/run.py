"""``train_run``: train (or resume) one configuration in its run folder, tracked in one MLflow run.

Re-running with the same folder resumes from ``checkpoints/last.ckpt`` at the same step, optimizer, EMA,
scheduler and RNG state, and keeps logging into the MLflow run whose id ``state.json`` holds.
"""

from __future__ import annotations

import os
import subprocess
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from harness.config import RunConfig, load_record
from harness.errors import HarnessError
from harness.recipe import TRAINER_PRECISION, Recipe, Stage, resolve
from harness.tracking import names
from harness.tracking.atomic import atomic_write_text
from harness.tracking.run_folder import RunFolder
from harness.train.branch import copy_parent_records, parent_checkpoint


class RunFolderMismatch(HarnessError):
    """The run folder holds a different configuration than the one asked to train there."""


def global_rank() -> int:
    """This process's rank before torch.distributed starts (Lightning's SLURM/torchrun conventions)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, key + ".")
        else:
            out[key] = str(v)[:6000]
    return out


def run_identity(config: RunConfig, folder: RunFolder, tags: dict[str, str],
                 recipe: Recipe | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Tags and params every run records (docs/DESIGN.md §4): the flattened resolved config and its derived settings
    (``derived.*``; ``recipe``: ``resolve(config)`` when the caller holds it), parameter counts and the analytic
    training FLOPs of a typical crop (the dry-run's)."""
    from harness.sizes import estimate
    from models.accounting import count_parameters

    recipe = recipe or resolve(config)
    arch = config.model.architecture()
    counts = count_parameters(arch)
    all_tags = {
        names.TAG_RUN_KEY: folder.path.name,
        names.TAG_CONFIG_HASH: config.config_hash(),
        names.TAG_PRESET: str(config.model.preset or "custom"),
        names.TAG_ATTENTION: arch.triangle_attention,
        names.TAG_GIT_COMMIT: git_commit(),
        names.TAG_KIND: "train",
        "run_dir": str(folder.path.resolve()),
    } | tags
    # The dry-run's number (a typical crop of the first stage); the real count per step is logged as FLOPs per step.
    flops = estimate(config, recipe=recipe, memory=False).flops_per_example
    params = flatten(config.model_dump(mode="json", exclude={"runs_dir", "tracking"}))
    params |= flatten({"derived": {k: v for k, v in recipe.as_dict().items() if k != "stages"}}) | {
        names.PARAM_PARAMS_TOTAL: str(counts["total"]),
        names.PARAM_PARAMS_NON_EMBEDDING: str(counts["non_embedding"]),
        names.PARAM_PARAMS_PAIR_TRACK: str(counts["pair_track"]),
        names.PARAM_FLOPS_PER_EXAMPLE: str(flops),
    } | runtime_params(config)
    return all_tags, params


def runtime_params(config: RunConfig) -> dict[str, str]:
    """The triangle-attention kernel that runs (and its parity self-check on CUDA) and the CPU allocator mode."""
    import torch

    from harness.allocator import tune_allocator
    from models.kernels.self_check import kernel_choice

    arch = config.model.architecture()
    cuda = config.train.accelerator != "cpu" and torch.cuda.is_available()
    # Triangle attention sees the trunk's autocast dtype and, in the confidence head's pair stack, that head's
    # (models/policy.py): each is checked now, outside autocast, under the key the dispatcher uses later.
    precisions = [arch.policy.trunk_precision] + ([arch.policy.confidence_precision] if arch.use_confidence_head
                                                  and arch.n_confidence_blocks else [])  # fmt: skip
    dtypes = tuple(torch.bfloat16 if p == "bf16" else torch.float32 for p in precisions)
    choice = kernel_choice(arch.kernel_impl, arch.triangle_attention, "cuda" if cuda else "cpu",
                           dtypes, arch.tri_att_head_dim)  # fmt: skip
    return {
        names.PARAM_KERNEL_TRIANGLE_ATTENTION: choice["kernel"],
        names.PARAM_KERNEL_SELF_CHECK: choice["self_check"],
        names.PARAM_CPU_MALLOC: tune_allocator(),
    }


def _open_tracking(config: RunConfig, recipe: Recipe, folder: RunFolder, experiment_id: str | None,
                   tags: dict[str, str]):
    """Rank 0: the run folder's identity (so reports work without MLflow), and a background uploader that keeps
    this folder's MLflow run up to date (``harness.tracking.sync``). None when tracking is off.

    The run is created (or found again) before training when the store answers within its request timeout;
    otherwise the uploader creates it once the store is back. Training starts either way.
    """
    from harness.tracking.sync import TrackingSync, Uploader

    state = folder.read_state()
    # Computed here, in the training thread (it may probe kernels), never in the uploader's.
    all_tags, params = run_identity(config, folder, tags, recipe)
    if "tags" not in state:
        folder.update_state(tags=all_tags, params={k: v for k, v in params.items() if "." not in k})
    if not config.tracking.enabled:
        return None
    stored = folder.read_state()["tags"]
    # A run found again keeps the store it lives in; a new one goes where the config says.
    uri = state.get("tracking_uri") if state.get("mlflow_run_id") else config.tracking_uri()
    sync = TrackingSync(folder, uri, experiment_name=config.tracking.experiment, experiment_id=experiment_id,
                        identity=lambda: (stored, params))
    uploader = Uploader(sync)
    uploader._attempt()  # create/find the run now if the store answers; never raises
    return uploader.start()


def _write_config(config: RunConfig, recipe: Recipe, folder: RunFolder) -> None:
    """config.yaml: the resolved config, then ``derived``: the settings in effect that it derives (crop atom
    budget, accumulation, precision per module, checkpointing, stages); a record, recomputed on load."""
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    text += yaml.safe_dump({"derived": recipe.as_dict()}, sort_keys=False)
    if folder.config_path.exists():
        old = yaml.safe_load(folder.config_path.read_text())
        old.pop("derived", None)  # written by another version of the recipe layer; the config itself decides
        old_hash = load_record(old, str(folder.config_path)).config_hash()
        if old_hash != config.config_hash():
            raise RunFolderMismatch(
                f"{folder.path}: holds a run of config {old_hash}, not {config.config_hash()}; "
                "use another run folder (or delete this one) to train a different configuration"
            )
    atomic_write_text(folder.config_path, text)


def local_devices(train) -> int:
    """How many devices this node trains on (``devices: auto`` = every visible GPU, or 1 CPU process)."""
    if isinstance(train.devices, int):
        return train.devices
    import torch

    if train.accelerator == "cpu" or not torch.cuda.is_available():
        return 1
    return max(torch.cuda.device_count(), 1)


def _trainer(config: RunConfig, stage: Stage, folder: RunFolder, logger, callbacks):
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    t = config.train
    plugins = []
    if SLURMEnvironment.detect():
        # submitit owns requeueing (docs/DESIGN.md §6: don't let both requeue).
        plugins.append(SLURMEnvironment(auto_requeue=False))
    devices = t.devices
    strategy = "auto"
    if local_devices(t) * t.num_nodes > 1:
        from lightning.pytorch.strategies import DDPStrategy

        # Every trainable parameter gets a gradient each step (those that get none by design are frozen by
        # SeedFoldModule), so DDP skips the per-step search for unused ones. Also for `devices: auto`, which
        # Lightning would otherwise turn into its own DDP on several GPUs.
        strategy = DDPStrategy(find_unused_parameters=False)
    return L.Trainer(
        accelerator=t.accelerator,
        devices=devices,
        num_nodes=t.num_nodes,
        strategy=strategy,
        precision=TRAINER_PRECISION,
        max_steps=stage.end,
        max_epochs=-1,
        limit_val_batches=0,  # validation runs on its own schedule of optimizer steps (SeedFoldModule.validate_now)
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=str(folder.path),
        plugins=plugins or None,
        use_distributed_sampler=False,  # the data module shards by rank itself
    )


def train_run(
    config: RunConfig,
    run_dir: str | Path | None = None,
    *,
    experiment_id: str | None = None,
    tags: dict[str, str] | None = None,
    datamodule_factory: Callable[..., L.LightningDataModule] | None = None,
) -> dict[str, Any]:
    """Train ``config`` in ``run_dir`` (default ``<runs_dir>/<name>-<hash>``), resuming if it was started.

    ``experiment_id``: an MLflow experiment created once by the caller (a sweep driver); default: looked up or
    created by name. ``datamodule_factory(data_config, seed=...)`` replaces ``StructureDataModule`` (custom data).
    Returns the final state: status, step, MLflow run id, last metrics and wall time. Rank 0 holds the run
    folder's lock for the session (``harness.tracking.trainer_lock``: no `harness tracking sync` beside it).
    """
    from harness.tracking.trainer_lock import folder_lock

    folder = RunFolder(run_dir or config.runs_dir / f"{config.name}-{config.config_hash()}")
    with folder_lock(folder, owner="trainer", wait=True) if global_rank() == 0 else nullcontext():
        return _train_session(config, folder, experiment_id, tags, datamodule_factory)


def _train_session(config: RunConfig, folder: RunFolder, experiment_id: str | None, tags: dict[str, str] | None,
                   datamodule_factory: Callable[..., L.LightningDataModule] | None) -> dict[str, Any]:
    import torch

    from harness.allocator import tune_allocator
    from harness.data.datamodule import StructureDataModule
    from harness.tracking.logger import RunLogger
    from harness.tracking.record import MetricRecord
    from harness.train.checkpointing import CheckpointKeeper
    from harness.train.ema import EMA
    from harness.train.module import SeedFoldModule

    # Resolved once: config.yaml records it, the dry-run's sizes use it, and every stage is handed down from it.
    recipe = resolve(config, f"run {config.name}")
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.checkpoint_dir.mkdir(exist_ok=True)
    rank = global_rank()
    if rank == 0:
        _write_config(config, recipe, folder)
    state = folder.read_state()
    if state.get("status") == "finished" and state.get("step", -1) >= config.train.max_steps:
        if rank == 0 and config.tracking.enabled:
            # Backfill what an outage at the end of the last session left behind, then stop.
            _open_tracking(config, recipe, folder, experiment_id, tags or {}).close(timeout_s=30)
        return folder.read_state()
    tune_allocator()  # SLURM/submitit jobs do not pass through the CLI's start-up
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    # Denormal floats appear as weights settle and make CPU kernels 10-50x slower; flush them to zero.
    torch.set_flush_denormal(True)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LightningModule.configure_optimizers.*")

    ckpt = folder.last_checkpoint
    # A branch's first session starts from its parent's milestone (harness/train/branch.py), later ones resume.
    branch = parent_checkpoint(config) if config.init_from is not None and not ckpt.exists() else None
    start = ckpt if ckpt.exists() else branch
    uploader = None
    if rank == 0:
        if branch is not None:
            copy_parent_records(config, folder.path)
            folder.update_state(branched_from={"run": str(config.init_from.run_dir), "step": config.init_from.step})
        # Rows logged after the checkpoint are retrained from it: cut them, so each step is recorded once.
        for record in (folder.metrics_path, folder.structure_metrics_path):
            MetricRecord(record).truncate_after(-1 if start is None else _checkpoint_step(start))
        folder.update_state(status="running", started=state.get("started", time.time()))
        uploader = _open_tracking(config, recipe, folder, experiment_id, tags or {})
    logger = RunLogger(folder, uploader, folder.read_state().get("mlflow_run_id"))
    L.seed_everything(config.seed, workers=True, verbose=False)

    t0 = time.perf_counter()
    events: list[dict] = []
    noise: list[dict] = []
    try:
        for stage in recipe.stages:
            start = ckpt if ckpt.exists() else branch
            resume_step = _checkpoint_step(start) if start is not None else 0
            if resume_step >= stage.end:
                continue
            data_cfg = stage.data_config(config.data)
            if datamodule_factory is None:
                datamodule = StructureDataModule(data_cfg, seed=config.seed, val_seed=config.train.val_seed)
            else:
                datamodule = datamodule_factory(data_cfg, seed=config.seed)
            module = SeedFoldModule(config, stage=stage)
            ema = EMA(config.train.ema_decay)
            keeper = CheckpointKeeper(folder, config.train)
            module.checkpoints = keeper
            trainer = _trainer(config, stage, folder, logger, [ema, keeper])
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(start) if start is not None else None,
                        weights_only=True)
            events += module.events
            noise += module.noise_trace
            if trainer.global_step < stage.end:
                raise RuntimeError(f"training stopped at step {trainer.global_step} before {stage.end}")
    except BaseException:
        if rank == 0:
            _record_guard(folder, events)
            folder.update_state(status="failed")
            if uploader is not None:
                uploader.close(timeout_s=config.tracking.flush_timeout_s)
        raise
    wall = time.perf_counter() - t0
    final_step = _checkpoint_step(ckpt) if ckpt.exists() else 0
    state = folder.read_state()
    if rank == 0:
        _record_guard(folder, events)
        state = folder.update_state(status="finished", step=final_step, wall_s_last_session=wall)
        if uploader is not None:
            uploader.close(timeout_s=config.tracking.flush_timeout_s)
            state = folder.read_state()
        m = state.get("last_metrics", {})
        print(
            f"[{config.name}] finished step {final_step} in {wall:.0f}s: "
            f"loss {m.get(names.LOSS, float('nan')):.4g}, val lDDT {m.get(names.VAL_LDDT, float('nan')):.3f}, "
            f"{m.get(names.ITER_PER_S, float('nan')):.2f} it/s, run {state.get('mlflow_run_id')}"
        )
    # This rank's first noise draws (not in state.json: every rank returns its own).
    return state | {"rank": rank, "noise_trace": noise}


def _record_guard(folder: RunFolder, events: list[dict]) -> None:
    """Append this session's guard decisions to state.json and mark the run rescued if the guard ever acted
    (a skipped step or a rollback): the report tells such runs apart (tag ``guard_rescued``)."""
    all_events = folder.read_state().get("guard_events", []) + events
    rescued = any(e["event"] in ("skip", "rollback") for e in all_events)
    folder.update_state(guard_events=all_events, guard_rescued=rescued)


def _checkpoint_step(path: Path) -> int:
    import torch

    # mmap: read the step without pulling every weight into memory.
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])
