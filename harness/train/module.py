"""The LightningModule that trains SeedFold (SPEC.md §2.7, §2.8).

Manual optimisation, because the stability guard must decide per optimizer step whether to apply, skip or roll
back after seeing both the loss and the gradient norm, identically on every DDP rank. With gradient accumulation
(``train.global_batch``) one optimizer step takes ``accumulation`` micro-batches: each backward sees its loss
divided by ``accumulation`` (the gradient of the mean loss), and the guard, clipping and the optimizer act once
per step on the accumulated gradient.
"""

from __future__ import annotations

import json
import random
import resource
import time

import lightning as L
import numpy as np
import torch
import yaml

from harness.config import RunConfig
from harness.recipe import Stage, accumulation_for, plan_stages
from harness.tracking import names
from harness.train.clock import DeviceClock, describe_device
from harness.train.ema import EMA
from harness.train.guard import Action, StabilityGuard
from harness.train.schedule import lr_multiplier
from models.model import SeedFold


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: max allocated since start; CPU: the process's peak resident set (Linux reports KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_seed(seed: int, rank: int, step: int, micro: int = 0) -> int:
    """A 64-bit seed for (seed, rank, optimizer step, micro-batch), well mixed (numpy's SeedSequence) so nearby
    tuples give unrelated streams."""
    return int(np.random.SeedSequence([seed % 2**63, rank, step, micro]).generate_state(1, np.uint64)[0])


def split_param_groups(saved: dict, groups: list[dict]) -> dict:
    """An optimizer state_dict written before the confidence head had its own group (one group), split to
    ``groups`` (the current optimizer's, or :meth:`SeedFoldModule.parameter_groups`): the head's parameters come
    last in both, so the state indices carry over. Any other state_dict is returned as it is."""
    if not (len(saved["param_groups"]) == 1 < len(groups)):
        return saved
    (only,) = saved["param_groups"]
    sizes = [len(group["params"]) for group in groups]
    if len(only["params"]) != sum(sizes):
        raise ValueError(f"the checkpoint's optimizer holds {len(only['params'])} parameters, this model's "
                         f"{sum(sizes)}: the checkpoint is of another model")
    ids, split = list(only["params"]), []
    for group, size in zip(groups, sizes, strict=True):
        hyper = {k: v for k, v in group.items() if k in ("name", "eps")}
        split.append({**only, **hyper, "params": ids[:size]})
        ids = ids[size:]
    return {**saved, "param_groups": split}


def load_optimizer_state_inplace(opt: torch.optim.Optimizer, saved: dict) -> None:
    """Load ``saved`` (an optimizer state_dict on the CPU) by copying into the existing state tensors, which
    keeps them on their device without allocating a second set; falls back to ``load_state_dict`` when the
    layouts differ (e.g. the optimizer has not stepped yet)."""
    saved = split_param_groups(saved, opt.param_groups)
    params = [p for group in opt.param_groups for p in group["params"]]
    states = saved["state"]
    same = len(states) == len(opt.state) and all(
        i in states and set(states[i]) == set(opt.state[p]) and all(
            not torch.is_tensor(v) or v.shape == opt.state[p][k].shape for k, v in states[i].items())
        for i, p in enumerate(params) if p in opt.state
    )
    if not same:
        opt.load_state_dict(saved)
        return
    with torch.no_grad():
        for i, p in enumerate(params):
            for key, value in states.get(i, {}).items():
                current = opt.state[p][key]
                if torch.is_tensor(current):
                    current.copy_(value)
                else:
                    opt.state[p][key] = value
    for group, saved_group in zip(opt.param_groups, saved["param_groups"], strict=True):
        group.update({k: v for k, v in saved_group.items() if k != "params"})


class _Window:
    """What the micro-batches of one optimizer step accumulated on this rank."""

    def __init__(self) -> None:
        self.micro_batches = 0
        self.finite = True
        self.loss_sums: dict[str, torch.Tensor] = {}
        self.counted = 0
        self.flops = 0.0
        self.examples = 0
        self.token_pairs = 0.0

    def add(self, losses: dict[str, torch.Tensor], flops: float, batch) -> None:
        for key, value in losses.items():
            self.loss_sums[key] = self.loss_sums.get(key, 0.0) + value.detach()
        self.counted += 1
        self.flops += flops
        self.examples += int(batch["token_mask"].shape[0])
        n_tok = batch["token_mask"].sum(-1).tolist()
        self.token_pairs += float(sum(t * t for t in n_tok))

    def mean_losses(self) -> dict[str, torch.Tensor]:
        """Mean over the window's micro-batches: the loss whose gradient the step takes."""
        return {key: value / self.counted for key, value in self.loss_sums.items()}


class SeedFoldModule(L.LightningModule):
    def __init__(self, config: RunConfig, *, stage: Stage | None = None, diffusion_batch: int | None = None):
        super().__init__()
        self.automatic_optimization = False
        self.config = config
        self.stage = stage or plan_stages(config)[0]
        from harness.memory.plan import stage_architecture

        self.arch = stage_architecture(config, self.stage)  # diffusion_chunk_size: auto resolved for the stage
        self.model = SeedFold(self.arch)
        self._freeze_unused()
        self.diffusion_batch = diffusion_batch or self.stage.diffusion_batch
        self.loss_weights = self.stage.loss_weights(config.train.loss_weights.model_dump())
        self.accumulation = accumulation_for(config)
        self._window = _Window()
        self.guard = StabilityGuard(config.train.guard)
        self.lr_scale = 1.0
        self.flops_cumulative = 0.0
        self.examples_seen = 0
        self.token_pairs_seen = 0.0
        self.draws_consumed = 0  # training examples this rank has drawn (the data stream's resume point)
        self.device_s_cumulative = 0.0  # measured training cost (harness/train/clock.py), the second cost axis
        self._clock: DeviceClock | None = None
        self._data_params_logged = False
        self.checkpoints = None  # set by train_run: the CheckpointKeeper that knows the last good checkpoint
        self.noise_trace: list[dict] = []  # this rank's first draws (step, cycles, sigma), to check rank streams
        self._last_sigma = None
        self._t_last = None
        self._flops_cache: dict[tuple, float] = {}
        self.events: list[dict] = []  # stability-guard decisions of this session, for state.json
        from harness.train.validation import Validator, validation_schedule

        t = config.train
        self.validator = Validator(self.model, t, loss_weights=self.loss_weights)
        self._val_schedule = set(validation_schedule(t.max_steps, t.val_every, t.val_log_points))
        self._last_val_step: int | None = None

    # ---- optimisation -------------------------------------------------------------------------------------

    def _freeze_unused(self) -> None:
        """Parameters that get no gradient by design leave training: DDP then needs no
        ``find_unused_parameters`` (an extra graph traversal per step), and the optimiser never sees them.
        The confidence head learns only from the confidence loss; without it the head stays at initialisation."""
        if self.model.confidence_head is not None and not self.config.train.confidence_loss:
            self.model.confidence_head.requires_grad_(False)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def parameter_groups(self) -> list[dict]:
        """The optimiser's groups: the model, and the confidence head on its own with the recipe's ε
        (``harness.recipe.confidence_adam_eps``) when it trains."""
        from harness.recipe import confidence_adam_eps

        eps = confidence_adam_eps(self.config)
        if eps is None:
            return [{"params": self.trainable_parameters(), "name": "model"}]
        head = {id(p) for p in self.model.confidence_head.parameters()}
        trunk = [p for p in self.trainable_parameters() if id(p) not in head]
        return [{"params": trunk, "name": "model"},
                {"params": [p for p in self.model.confidence_head.parameters() if p.requires_grad],
                 "name": "confidence_head", "eps": eps}]

    def configure_optimizers(self):
        t = self.config.train
        cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        opt = cls(self.parameter_groups(), lr=t.lr, betas=t.betas, eps=t.eps, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: lr_multiplier(step, t) * self.lr_scale
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_fit_start(self) -> None:
        # The config's devices x nodes derived the accumulation; the cluster must provide that world.
        self.accumulation = accumulation_for(self.config, world_size=self.trainer.world_size)
        self.arch.policy.apply_backend()
        self._clock = DeviceClock(self.device)

    def _n_cycles(self) -> int:
        # Seeded by (seed, optimizer step, micro-batch) so that every DDP rank draws the same number (SPEC.md §2.8).
        micro = self._window.micro_batches
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.global_step + 7_919_993 * micro)
        return int(torch.randint(1, self.config.train.max_cycles + 1, (1,), generator=g))

    def _seed_rank_stream(self) -> None:
        """Seed the global RNG (CPU and CUDA) from (seed, rank, step, micro-batch) before each micro-batch: ranks
        draw different sigma, rotations, noise and dropout masks, and a resumed run draws what it would have
        drawn, with no RNG state to restore. The recycling count has its own rank-free stream (``_n_cycles``)."""
        torch.manual_seed(step_seed(self.config.seed, self.global_rank, self.global_step,
                                    self._window.micro_batches))

    def _loss(self, batch, n_cycles: int, diffusion_batch: int) -> dict[str, torch.Tensor]:
        from models.losses import compute_losses

        confidence = self.config.train.confidence_loss and self.arch.use_confidence_head
        outputs = self.model(batch, n_cycles=n_cycles, diffusion_batch=diffusion_batch, with_confidence=confidence)
        self._last_sigma = outputs["sigma"].detach()
        return compute_losses(outputs, batch, weights=self.loss_weights, confidence=confidence,
                              sigma_data=self.arch.sigma_data)

    def _all_ranks_finite(self, value: torch.Tensor) -> bool:
        bad = (~torch.isfinite(value.detach())).float().reshape(1)
        bad = self.trainer.strategy.reduce(bad, reduce_op="max")
        return bool(bad.item() == 0)

    def training_step(self, batch, batch_idx):
        """One micro-batch; every ``accumulation``-th one ends the window and takes (or refuses) the step."""
        window = self._window
        self.draws_consumed += int(batch["token_mask"].shape[0])
        if self._t_last is None:
            self._t_last = time.perf_counter()
            self._clock.start()
        if window.finite:
            n_cycles = self._n_cycles()
            self._seed_rank_stream()
            try:
                losses = self._loss(batch, n_cycles, self.diffusion_batch)
            except torch.linalg.LinAlgError:
                # Non-finite inputs make the rigid alignment's SVD fail before the loss can turn NaN.
                losses = {"loss": torch.tensor(float("nan"), device=self.device)}
            if len(self.noise_trace) < 16 and self._last_sigma is not None:
                self.noise_trace.append({"step": self.global_step, "micro": window.micro_batches,
                                         "rank": self.global_rank, "cycles": n_cycles,
                                         "sigma": float(self._last_sigma.flatten()[0])})
            if self._all_ranks_finite(losses["loss"]):
                with self._backward_sync(last=window.micro_batches + 1 == self.accumulation):
                    self.manual_backward(losses["loss"] / self.accumulation)
                window.add(losses, self._micro_flops(batch, n_cycles), batch)
            else:
                window.finite = False  # every rank agrees (reduced), so every rank skips the rest alike
        window.micro_batches += 1
        if window.micro_batches < self.accumulation:
            return None
        self._window = _Window()
        self._end_window(window)
        return None

    def _backward_sync(self, *, last: bool):
        """Under DDP only the backward of a window's last micro-batch all-reduces (it reduces the gradient the
        window accumulated); the others accumulate on each rank (DDP's ``no_sync``): one gradient all-reduce per
        optimizer step instead of one per micro-batch."""
        from contextlib import nullcontext

        from lightning.pytorch.strategies import ParallelStrategy

        strategy = self.trainer.strategy
        return nullcontext() if last or not isinstance(strategy, ParallelStrategy) else strategy.block_backward_sync()

    def _end_window(self, window: _Window) -> None:
        opt = self.optimizers()
        if not window.finite:
            self._handle(self.guard.observe(float("nan"), None), opt)
            return
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable_parameters(), self.config.train.grad_clip)
        losses = window.mean_losses()
        action = self.guard.observe(float(losses["loss"]), float(grad_norm))
        if action is not Action.APPLY:
            self._handle(action, opt)
            return
        lr = getattr(opt, "optimizer", opt).param_groups[0]["lr"]  # the rate this step is taken with
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.lr_schedulers().step()
        self._record_step(window, losses, grad_norm, lr)

    def _handle(self, action: Action, opt) -> None:
        opt.zero_grad(set_to_none=True)
        step = self.global_step
        event = {"step": step, "event": action.value, "lr_scale": self.lr_scale}
        if action is Action.ROLLBACK:
            event["checkpoint"] = self._roll_back(opt)
            event["lr_scale"] = self.lr_scale
            self.guard.rolled_back()
            self.print(f"stability guard: rolled back at step {step} to {event['checkpoint']}, "
                       f"lr scale now {self.lr_scale:g}")
        self._log_now({names.SKIPPED_STEPS: float(self.guard.skipped), names.ROLLBACKS: float(self.guard.rollbacks)})
        self.events.append(event)

    def _roll_back(self, opt) -> str | None:
        """Restore model, optimizer and EMA from the newest good checkpoint (one saved before the trouble began,
        see ``CheckpointKeeper``); lower the learning rate.

        The checkpoint is memory-mapped on the CPU and copied into the existing parameters and optimizer
        moments, so the GPU never holds a second copy of the model.
        """
        self.lr_scale *= self.config.train.guard.lr_factor
        path = self.checkpoints.last_good() if self.checkpoints is not None else None
        if path is None or not path.exists():
            return None
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        self.load_state_dict(ckpt["state_dict"])  # copy_ into the parameters, on their device
        # Into the wrapped optimizer: LightningOptimizer keeps its own copy of the attribute dict.
        load_optimizer_state_inplace(getattr(opt, "optimizer", opt), ckpt["optimizer_states"][0])
        saved = ckpt.get("callbacks", {})
        for cb in self.trainer.callbacks:
            if isinstance(cb, EMA) and cb.state_key in saved:
                cb.load_state_dict(saved[cb.state_key])
                cb.on_fit_start(self.trainer, self)
        return path.name

    def _micro_flops(self, batch, n_cycles: int) -> float:
        """FLOPs of this rank's micro-batch, from each example's real token, atom and MSA-row counts."""
        n_tok = batch["token_mask"].sum(-1).tolist()
        n_atom = batch["atom_mask"].sum(-1).tolist()
        n_msa = batch["msa_mask"].any(-1).sum(-1).tolist()
        sizes = zip(n_tok, n_atom, n_msa, strict=True)
        return sum(self._train_flops(int(t), int(a), int(m), n_cycles) for t, a, m in sizes)

    def _record_step(self, window: _Window, losses, grad_norm, lr: float) -> None:
        now = time.perf_counter()
        dt, self._t_last = now - self._t_last, now
        # Summed over ranks: each rank's micro-batches hold crops of different sizes, and each rank is a device.
        counts = torch.tensor([window.flops, float(window.examples), window.token_pairs, self._clock.lap()],
                              dtype=torch.float64)
        counts = self.trainer.strategy.reduce(counts.to(self.device), reduce_op="sum").cpu()
        flops, n_examples, device_s = float(counts[0]), int(counts[1]), float(counts[3])
        self.flops_cumulative += flops
        self.examples_seen += n_examples
        self.token_pairs_seen += float(counts[2])
        self.device_s_cumulative += device_s
        self.log("loss", losses["loss"].detach(), prog_bar=True, logger=False)
        self.log("ex/s", n_examples / max(dt, 1e-9), prog_bar=True, logger=False)
        if self.global_step % self.config.train.log_every and self.global_step != self.trainer.max_steps:
            return
        metrics = {names.LOSS: losses["loss"]}
        for key in ("mse", "bond", "smooth_lddt", "distogram", "plddt", "pae", "pde", "resolved"):
            if key in losses:
                metrics[f"train/loss_{key}"] = losses[key]
        metrics = {k: float(v.detach()) for k, v in metrics.items()}
        metrics |= {
            names.LR: lr,
            names.GRAD_NORM: float(grad_norm),
            names.EXAMPLES_PER_S: n_examples / max(dt, 1e-9),
            names.ITER_PER_S: 1.0 / max(dt, 1e-9),
            names.PEAK_MEMORY_MB: peak_memory_mb(self.device),
            names.FLOPS_PER_STEP: flops,
            names.FLOPS_CUMULATIVE: self.flops_cumulative,
            names.DEVICE_S_PER_STEP: device_s,
            names.DEVICE_S_CUMULATIVE: self.device_s_cumulative,
            names.EXAMPLES_SEEN: float(self.examples_seen),
            names.TOKEN_PAIRS_SEEN: self.token_pairs_seen,
            names.SKIPPED_STEPS: float(self.guard.skipped),
            names.ROLLBACKS: float(self.guard.rollbacks),
        }
        self._log_now(metrics)

    def _log_now(self, metrics: dict[str, float]) -> None:
        """Log at step = optimizer steps taken so far (1..max_steps); validation logs at the same scale."""
        if self.trainer.is_global_zero and self.logger is not None:
            self.logger.log_metrics(metrics, step=self.global_step)

    def _train_flops(self, n_tokens: int, n_atoms: int, n_msa: int, n_cycles: int) -> float:
        """``models.accounting.train_flops`` of one example (the dry-run's formula), cached by size."""
        key = (n_tokens, n_atoms, n_msa, n_cycles)
        if key not in self._flops_cache:
            from models.accounting import train_flops

            confidence = self.config.train.confidence_loss and self.arch.use_confidence_head
            self._flops_cache[key] = train_flops(self.arch, n_tokens=n_tokens, n_atoms=n_atoms, n_msa=n_msa,
                                                 n_cycles=n_cycles, diffusion_batch=self.diffusion_batch,
                                                 confidence=confidence)
        return self._flops_cache[key]

    # ---- validation (the estimator lives in harness/train/validation.py) --------------------------------------

    def on_train_start(self) -> None:
        sampler = getattr(self.trainer.datamodule, "_sampler", None)
        if self.draws_consumed and hasattr(sampler, "resume_at"):
            sampler.resume_at(self.draws_consumed)  # resumed (or branched): continue the data stream, not replay it
        device, basis = describe_device(self.device, self.trainer.world_size)
        if self.trainer.is_global_zero and self.logger is not None and hasattr(self.logger, "log_params"):
            self.logger.log_params({names.PARAM_DEVICE: device, names.PARAM_TIME_BASIS: basis})
        if self.global_step == 0:
            self.validate_now()  # the untrained model: the baseline that learning is measured against

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        # After the callbacks' hook, so the EMA already holds this step's update.
        if self.global_step in self._val_schedule and self.global_step != self._last_val_step:
            self.validate_now()

    def validate_now(self) -> dict[str, float]:
        """Score the EMA weights on this rank's shard of the fixed validation set, reduce the sums over ranks
        and log at ``global_step`` with the compute axis. Returns the metrics (on every rank)."""
        from harness.train.validation import lddt_steps

        step = self.global_step
        self._last_val_step = step
        with_lddt = step in lddt_steps(sorted(self._val_schedule), self.config.train.val_lddt_every)
        with_baseline = step == 0
        sums = self._scored_sums(self._val_examples(), with_lddt=with_lddt, with_baseline=with_baseline)
        metrics = self.validator.estimator.metrics(sums, with_lddt=with_lddt, with_baseline=with_baseline)
        per_structure = self._gather_per_structure(self.validator.per_example)
        if self.config.train.val_train_probe and step in (0, max(self._val_schedule)):
            metrics |= self._train_probe()
        # The compute axis at this validation (0 at initialisation), for metric-vs-FLOPs curves.
        metrics |= {names.FLOPS_CUMULATIVE: self.flops_cumulative, names.EXAMPLES_SEEN: float(self.examples_seen),
                    names.TOKEN_PAIRS_SEEN: self.token_pairs_seen, names.DEVICE_S_CUMULATIVE: self.device_s_cumulative}
        self._log_now(metrics)
        if self.trainer.is_global_zero and hasattr(self.logger, "log_structure_metrics"):
            self.logger.log_structure_metrics(step, per_structure)
        if not self._data_params_logged:  # at step 0, or at a branch's first validation
            self._log_data_params(sums)
            self._data_params_logged = True
        self._t_last = None  # throughput and device time measure training steps only
        if self._clock is not None:
            self._clock.pause()
        return metrics

    def _scored_sums(self, examples, *, with_lddt: bool, with_baseline: bool) -> torch.Tensor:
        """The estimator's sums over ``examples`` with the EMA weights in eval mode, reduced over ranks."""
        ema = next((cb for cb in self.trainer.callbacks if isinstance(cb, EMA)), None)
        if ema is not None:
            ema.swap_in(self)
        was_training = self.model.training
        self.model.eval()
        try:
            sums = self.validator.sums(examples, self.device, with_lddt=with_lddt, with_baseline=with_baseline)
        finally:
            self.model.train(was_training)
            if ema is not None:
                ema.swap_out(self)
        return self.trainer.strategy.reduce(sums, reduce_op="sum")

    def _gather_per_structure(self, mine: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """Every rank's per-structure values, on every rank (each rank scored its own shard)."""
        if self.trainer.world_size == 1 or not torch.distributed.is_initialized():
            return dict(mine)
        parts: list[dict] = [None] * self.trainer.world_size  # type: ignore[list-item]
        torch.distributed.all_gather_object(parts, mine)
        return {entry: values for part in parts for entry, values in part.items()}

    def _train_probe(self) -> dict[str, float]:
        """The estimator's losses (no sampling) on fixed crops of as many training structures as the
        validation set holds, spread evenly over the train split, under ``train_probe/`` names."""
        from torch.utils.data import Subset

        from harness.train.validation import shard, train_probe_picks

        dm = self.trainer.datamodule
        probe = getattr(dm, "train_probe_set", None)
        n_val = len(dm.val_set) if dm.val_set is not None else 0
        n_val = n_val if self.config.train.val_batches is None else min(n_val, self.config.train.val_batches)
        picks = train_probe_picks(len(probe) if probe is not None else 0, n_val)
        if not picks:
            return {}
        examples = shard(Subset(probe, picks), None, self.global_rank, self.trainer.world_size)
        sums = self._scored_sums(examples, with_lddt=False, with_baseline=False)
        metrics = self.validator.estimator.metrics(sums, with_lddt=False, with_baseline=False)
        return {names.TRAIN_PROBE_PREFIX + k.removeprefix("val/"): v for k, v in metrics.items()
                if k.startswith("val/") and "_sigma_" not in k}

    def _val_examples(self):
        """This rank's examples of the fixed validation set (see ``harness.train.validation.shard``)."""
        from harness.train.validation import shard

        dm = self.trainer.datamodule
        return shard(dm.val_set, self.config.train.val_batches, self.global_rank, self.trainer.world_size)

    def _log_data_params(self, sums: torch.Tensor) -> None:
        """How many structures and tokens the run trains and validates on (params, logged once)."""
        dm = self.trainer.datamodule
        n_val, val_tokens = self.validator.estimator.tokens(sums)
        sigmas = self.validator.estimator.quadrature.sigmas
        train = getattr(dm, "train_set", None)
        entries = [e for d in getattr(train, "datasets", []) for e in d.entries]
        params = {
            names.PARAM_TRAIN_STRUCTURES: str(len(entries)),
            names.PARAM_TRAIN_TOKENS: str(sum(int(e.get("n_tokens", 0)) for e in entries)),
            names.PARAM_VAL_STRUCTURES: str(n_val),
            names.PARAM_VAL_TOKENS: str(val_tokens),
            names.PARAM_VAL_SIGMAS: json.dumps([round(float(x), 6) for x in sigmas]),
        }
        if self.trainer.is_global_zero and self.logger is not None and hasattr(self.logger, "log_params"):
            self.logger.log_params(params)

    # ---- checkpoint state -----------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["harness"] = {
            "lr_scale": self.lr_scale,
            "flops_cumulative": self.flops_cumulative,
            "examples_seen": self.examples_seen,
            "token_pairs_seen": self.token_pairs_seen,
            "device_s_cumulative": self.device_s_cumulative,
            "draws_consumed": self.draws_consumed,
            "guard": self.guard.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
            "rng_numpy_pos": int(np.random.get_state()[2]),
            "rng_python": list(random.getstate()[1]),
            "config_hash": self.config.config_hash(),
            # The resolved config travels with the weights, so a checkpoint alone can be used for prediction.
            "config_yaml": yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Lightning restores the optimizer after this hook: older checkpoints get the current group layout.
        if checkpoint.get("optimizer_states"):
            checkpoint["optimizer_states"] = [split_param_groups(checkpoint["optimizer_states"][0],
                                                                 self.parameter_groups())]
        h = checkpoint["harness"]
        self.lr_scale = h["lr_scale"]
        self.flops_cumulative = h["flops_cumulative"]
        self.examples_seen = h["examples_seen"]
        self.token_pairs_seen = h["token_pairs_seen"]
        self.device_s_cumulative = h.get("device_s_cumulative", 0.0)  # checkpoints before the clock: unknown, 0
        self.draws_consumed = h.get("draws_consumed", 0)  # older checkpoints: the stream restarts its epoch
        self.guard.load_state_dict(h["guard"])
        torch.set_rng_state(h["rng_torch"])
        np.random.set_state(("MT19937", h["rng_numpy"].numpy().astype(np.uint32), h["rng_numpy_pos"], 0, 0.0))
        random.setstate((3, tuple(h["rng_python"]), None))
