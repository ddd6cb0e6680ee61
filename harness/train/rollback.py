"""Rollback and optimiser-state migration: the stability guard's answer to a step it refuses, and loading an
optimizer state into the live optimizer (a rollback, or a checkpoint of another parameter-group layout)."""

from __future__ import annotations

import torch

from harness.tracking import names
from harness.train.ema import EMA
from harness.train.guard import Action


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


class Rollback:
    """The guard-decision part of ``SeedFoldModule``: skip or roll back, record the event (it runs with the
    module's ``trainer``, ``guard``, ``checkpoints``, ``lr_scale`` and ``events``)."""

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
