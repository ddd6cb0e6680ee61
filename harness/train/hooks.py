"""Validation and probe hooks of the training module: the fixed validation set scored with the EMA weights on
its schedule of optimizer steps, the train probe, and the data parameters logged once (the estimator itself
lives in ``harness/train/validation.py``)."""

from __future__ import annotations

import json

import torch

from harness.tracking import names
from harness.train.clock import describe_device
from harness.train.ema import EMA


class ValidationHooks:
    """The validation part of ``SeedFoldModule`` (it runs with the module's ``trainer``, ``config``,
    ``validator``, ``_val_schedule`` and accounting counters)."""

    def on_train_start(self) -> None:
        sampler = getattr(self.trainer.datamodule, "_sampler", None)
        if self.draws_consumed and hasattr(sampler, "resume_at"):
            sampler.resume_at(self.draws_consumed)  # resumed (or branched): continue the data stream, not replay it
        device, basis = describe_device(self.device, self.trainer.world_size)
        if self.trainer.is_global_zero and self.logger is not None and hasattr(self.logger, "log_params"):
            self.logger.log_params({names.PARAM_DEVICE: device, names.PARAM_TIME_BASIS: basis})
        if self.global_step == 0 and 0 in self._val_schedule:
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
