"""Exponential moving average of the weights (AF3: decay 0.999), used for validation and saved in checkpoints."""

from __future__ import annotations

import lightning as L
import torch


class EMA(L.Callback):
    """Keeps ``shadow = d * shadow + (1 - d) * param`` after every optimizer step.

    Warm start: the effective decay is ``min(decay, (1 + t) / (10 + t))`` at update ``t``, so early averages are
    not dominated by the random initialisation. During validation the EMA weights are swapped in.
    """

    def __init__(self, decay: float = 0.999):
        self.decay = decay
        self.updates = 0
        self.shadow: dict[str, torch.Tensor] = {}
        self._backup: dict[str, torch.Tensor] | None = None
        self._last_step = -1

    def _params(self, pl_module: L.LightningModule):
        return {n: p for n, p in pl_module.named_parameters() if p.requires_grad}

    def on_fit_start(self, trainer, pl_module) -> None:
        params = self._params(pl_module)
        if not self.shadow:
            self.shadow = {n: p.detach().clone().float() for n, p in params.items()}
        else:  # restored from a checkpoint on CPU: move to the module's device
            self.shadow = {n: t.to(params[n].device) for n, t in self.shadow.items()}

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._last_step or self.decay == 0.0:
            return  # no optimizer step was taken (skipped by the stability guard)
        self._last_step = trainer.global_step
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in self._params(pl_module).items():
            self.shadow[name].lerp_(p.detach().float(), 1.0 - d)
        self.updates += 1

    @torch.no_grad()
    def swap_in(self, pl_module: L.LightningModule) -> None:
        if not self.shadow or self._backup is not None:
            return
        params = self._params(pl_module)
        self._backup = {n: p.detach().clone() for n, p in params.items()}
        for n, p in params.items():
            p.copy_(self.shadow[n].to(p.dtype))

    @torch.no_grad()
    def swap_out(self, pl_module: L.LightningModule) -> None:
        if self._backup is None:
            return
        for n, p in self._params(pl_module).items():
            p.copy_(self._backup[n])
        self._backup = None

    def on_validation_start(self, trainer, pl_module) -> None:
        self.swap_in(pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        self.swap_out(pl_module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        # A checkpoint written while the EMA weights are swapped in must still hold the live weights.
        if self._backup is not None:
            checkpoint["state_dict"].update({name: t.detach().clone() for name, t in self._backup.items()})

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates,
                "shadow": {n: t.detach().cpu() for n, t in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.updates = state["updates"]
        self.shadow = dict(state["shadow"])
