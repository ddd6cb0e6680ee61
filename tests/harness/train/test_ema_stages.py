"""EMA bookkeeping and two-stage recipes (crop and diffusion batch change at a step)."""

import torch

from harness.config import RunConfig, parse_config
from harness.recipe import plan_stages
from harness.train.ema import EMA
from harness.train.run import train_run


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))


def test_ema_warm_start_and_swap():
    module = Tiny()
    ema = EMA(decay=0.999)
    ema.on_fit_start(None, module)

    class Trainer:
        global_step = 0

    trainer = Trainer()
    for step in range(1, 4):
        with torch.no_grad():
            module.w.fill_(float(step))
        trainer.global_step = step
        ema.on_train_batch_end(trainer, module, None, None, 0)
    # Warm start: decays 1/10, 2/11, 3/12 instead of 0.999.
    expected = 0.0
    for t, x in enumerate((1.0, 2.0, 3.0)):
        d = (1 + t) / (10 + t)
        expected = d * expected + (1 - d) * x
    assert torch.allclose(ema.shadow["w"], torch.full((3,), expected))
    # A repeated step (skipped by the guard) does not update.
    ema.on_train_batch_end(trainer, module, None, None, 0)
    assert ema.updates == 3

    ema.swap_in(module)
    assert torch.allclose(module.w, torch.full((3,), expected))
    checkpoint = {"state_dict": {k: v.clone() for k, v in module.state_dict().items()}}
    ema.on_save_checkpoint(None, module, checkpoint)
    assert torch.equal(checkpoint["state_dict"]["w"], torch.full((3,), 3.0))  # live weights, not the EMA
    ema.swap_out(module)
    assert torch.equal(module.w, torch.full((3,), 3.0))


def test_plan_stages_splits_the_run():
    config = parse_config(RunConfig, {"train": {"max_steps": 100, "diffusion_batch": 64, "stages": [
        {"start_step": 60, "crop_size": 640, "diffusion_batch": 32}]}}, "<test>")
    stages = plan_stages(config)
    assert [(s.start, s.end, s.crop_size, s.diffusion_batch) for s in stages] == [
        (0, 60, 64, 64), (60, 100, 640, 32)]  # the first stage's crop resolved: data.crop_size (64)


def test_two_stage_run_trains_through_both(make_config, tmp_path):
    config = make_config(max_steps=8, val_every=100, checkpoint_every=2, log_every=1,
                         stages=[{"start_step": 0, "crop_size": 24}, {"start_step": 5, "crop_size": 40,
                                                                       "diffusion_batch": 1}])
    state = train_run(config, tmp_path / "run")
    assert state["status"] == "finished" and state["step"] == 8
    # Token pairs per step grow when the crop does (crops hold up to crop_size tokens).
    import csv

    with open(tmp_path / "run" / "metrics.csv") as f:
        pairs = {int(r["step"]): float(r["value"]) for r in csv.DictReader(f) if r["key"] == "data/token_pairs_seen"}
    first = [pairs[s] - pairs[s - 1] for s in range(2, 6)]
    second = [pairs[s] - pairs[s - 1] for s in range(6, 9)]
    assert max(first) <= 24 * 24 and max(second) > 24 * 24
