"""The LightningModule that trains SeedFold (docs/DESIGN.md §1.7, §2).

Manual optimisation, because the stability guard must decide per optimizer step whether to apply, skip or roll
back after seeing both the loss and the gradient norm, identically on every DDP rank. With gradient accumulation
(``train.global_batch``) one optimizer step takes ``accumulation`` micro-batches: each backward sees its loss
divided by ``accumulation`` (the gradient of the mean loss), and the guard, clipping and the optimizer act once
per step on the accumulated gradient.

The module runs one resolved ``harness.recipe.Stage`` (crop, diffusion batch, loss weights, whether the
confidence head trains and its Adam ε, accumulation), handed down by ``train_run``; it derives none of them.
Its other concerns live beside it: step accounting (``accounting.py``), the guard's skip and rollback and
optimiser-state migration (``rollback.py``), validation and probe hooks (``hooks.py``), random streams and RNG
state (``rng.py``).
"""

from __future__ import annotations

import time

import lightning as L
import torch
import yaml

from harness.config import RunConfig
from harness.errors import HarnessError
from harness.recipe import Stage, resolve
from harness.train.accounting import StepAccounting, Window, peak_memory_mb
from harness.train.clock import DeviceClock
from harness.train.guard import Action, StabilityGuard
from harness.train.hooks import ValidationHooks
from harness.train.rng import draw_cycles, global_rng_state, restore_global_rng_state, step_seed
from harness.train.rollback import Rollback, load_optimizer_state_inplace, split_param_groups
from harness.train.schedule import lr_multiplier
from models.model import SeedFold

__all__ = ["SeedFoldModule", "load_optimizer_state_inplace", "peak_memory_mb", "split_param_groups", "step_seed"]


class SeedFoldModule(ValidationHooks, Rollback, StepAccounting, L.LightningModule):
    def __init__(self, config: RunConfig, *, stage: Stage | None = None):
        """``stage``: the resolved stage to train (``train_run`` hands each in turn); default: the config's first,
        resolved here (for tools and tests that build a module alone)."""
        super().__init__()
        self.automatic_optimization = False
        self.config = config
        self.stage = stage or resolve(config).stages[0]
        from harness.memory.plan import stage_architecture

        self.arch = stage_architecture(config, self.stage)  # diffusion_chunk_size: auto resolved for the stage
        self.model = SeedFold(self.arch)
        self._freeze_unused()
        self.diffusion_batch = self.stage.diffusion_batch
        self.loss_weights = dict(self.stage.loss_weights)
        self.accumulation = self.stage.accumulation
        self._window = Window()
        self.guard = StabilityGuard(config.train.guard)
        self.lr_scale = 1.0
        self._init_accounting()
        self._clock: DeviceClock | None = None
        self._data_params_logged = False
        self.checkpoints = None  # set by train_run: the CheckpointKeeper that knows the last good checkpoint
        self.noise_trace: list[dict] = []  # this rank's first draws (step, cycles, sigma), to check rank streams
        self._last_sigma = None
        self.events: list[dict] = []  # stability-guard decisions of this session, for state.json
        from harness.train.validation import Validator, validation_schedule

        t = config.train
        self.validator = Validator(self.model, t, loss_weights=self.loss_weights)
        self._val_schedule = set(validation_schedule(t.max_steps, t.val_every, t.val_log_points, t.val_at_start))
        self._last_val_step: int | None = None

    # ---- optimisation -------------------------------------------------------------------------------------

    def _freeze_unused(self) -> None:
        """Parameters that get no gradient by design leave training: DDP then needs no
        ``find_unused_parameters`` (an extra graph traversal per step), and the optimiser never sees them.
        The confidence head learns only from the confidence loss; without it the head stays at initialisation."""
        if self.model.confidence_head is not None and not self.stage.confidence:
            self.model.confidence_head.requires_grad_(False)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def parameter_groups(self) -> list[dict]:
        """The optimiser's groups: the model, and the confidence head on its own with the stage's ε
        (``Stage.confidence_adam_eps``) when it has one."""
        eps = self.stage.confidence_adam_eps
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
        # The stage's accumulation was derived for devices x nodes processes; the cluster must provide that world.
        world = self.stage.world_size
        if world is not None and self.trainer.world_size != world:
            raise HarnessError(f"the trainer runs {self.trainer.world_size} processes, but train.global_batch's "
                               f"accumulation ({self.accumulation}) was derived for train.devices x "
                               f"train.num_nodes = {world}")
        self.arch.policy.apply_backend()
        self._clock = DeviceClock(self.device)

    def _n_cycles(self) -> int:
        # Seeded by (seed, optimizer step, micro-batch): every DDP rank draws the same number (docs/DESIGN.md §2).
        return draw_cycles(self.config.seed, self.global_step, self._window.micro_batches,
                           self.config.train.max_cycles)

    def _seed_rank_stream(self) -> None:
        """Seed the global RNG (CPU and CUDA) from (seed, rank, step, micro-batch) before each micro-batch: ranks
        draw different sigma, rotations, noise and dropout masks, and a resumed run draws what it would have
        drawn, with no RNG state to restore. The recycling count has its own rank-free stream (``_n_cycles``)."""
        torch.manual_seed(step_seed(self.config.seed, self.global_rank, self.global_step,
                                    self._window.micro_batches))

    def _loss(self, batch, n_cycles: int, diffusion_batch: int) -> dict[str, torch.Tensor]:
        from models.losses import compute_losses

        confidence = self.stage.confidence
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
        self._window = Window()
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

    def _end_window(self, window: Window) -> None:
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

    # ---- checkpoint state -----------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["harness"] = {
            "lr_scale": self.lr_scale,
            **self.accounting_state(),
            "guard": self.guard.state_dict(),
            **global_rng_state(),
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
        self.load_accounting_state(h)
        self.guard.load_state_dict(h["guard"])
        restore_global_rng_state(h)
