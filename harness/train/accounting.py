"""Step accounting of the training module: what one optimizer step cost and saw (FLOPs, examples, token pairs,
device seconds, throughput, memory) and the per-step metrics that record it.

``Window`` collects one optimizer step's micro-batches on a rank; ``StepAccounting`` (a part of
``SeedFoldModule``) reduces a window over ranks, keeps the cumulative counters a checkpoint carries and logs the
step's metrics.
"""

from __future__ import annotations

import resource
import time

import torch

from harness.tracking import names

# The recorded loss terms are names.LOSS_TERMS; models.losses.compute_losses returns them without this prefix.
LOSS_TERM_PREFIX = "train/loss_"
# The cumulative counters (attributes of the module) a checkpoint carries, with their value before any step.
COUNTERS = {"flops_cumulative": 0.0, "examples_seen": 0, "token_pairs_seen": 0.0, "device_s_cumulative": 0.0,
            "draws_consumed": 0}


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: max allocated since start; CPU: the process's peak resident set (Linux reports KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Window:
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


class StepAccounting:
    """The accounting part of ``SeedFoldModule`` (it runs with the module's ``trainer``, ``config``, ``arch``,
    ``stage``, ``diffusion_batch`` and ``guard``). Counters: ``flops_cumulative``, ``examples_seen``,
    ``token_pairs_seen``, ``device_s_cumulative`` (summed over ranks) and ``draws_consumed`` (this rank's
    training draws, the data stream's resume point)."""

    def _init_accounting(self) -> None:
        for key, start in COUNTERS.items():
            setattr(self, key, start)
        self._t_last = None
        self._flops_cache: dict[tuple, float] = {}

    def accounting_state(self) -> dict[str, float]:
        """The counters, for a checkpoint."""
        return {key: getattr(self, key) for key in COUNTERS}

    def load_accounting_state(self, state: dict) -> None:
        """Counters from a checkpoint; those it predates start from zero (``device_s_cumulative``: checkpoints
        before the clock, unknown; ``draws_consumed``: the data stream restarts its epoch)."""
        for key, start in COUNTERS.items():
            setattr(self, key, state.get(key, start))

    def _micro_flops(self, batch, n_cycles: int) -> float:
        """FLOPs of this rank's micro-batch, from each example's real token, atom and MSA-row counts."""
        n_tok = batch["token_mask"].sum(-1).tolist()
        n_atom = batch["atom_mask"].sum(-1).tolist()
        n_msa = batch["msa_mask"].any(-1).sum(-1).tolist()
        sizes = zip(n_tok, n_atom, n_msa, strict=True)
        return sum(self._train_flops(int(t), int(a), int(m), n_cycles) for t, a, m in sizes)

    def _record_step(self, window: Window, losses, grad_norm, lr: float) -> None:
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
        for name in names.LOSS_TERMS:
            key = name.removeprefix(LOSS_TERM_PREFIX)
            if key in losses:
                metrics[name] = losses[key]
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

            self._flops_cache[key] = train_flops(self.arch, n_tokens=n_tokens, n_atoms=n_atoms, n_msa=n_msa,
                                                 n_cycles=n_cycles, diffusion_batch=self.diffusion_batch,
                                                 confidence=self.stage.confidence)
        return self._flops_cache[key]
