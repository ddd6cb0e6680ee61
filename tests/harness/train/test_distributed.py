"""Distributed correctness on one process: per-rank RNG streams, parameters DDP can rely on, in-place rollback."""

import torch

from harness.data.datamodule import StructureDataModule
from harness.train.module import SeedFoldModule, load_optimizer_state_inplace, step_seed
from harness.train.run import local_devices


def first_sigma(module, batch, rank: int, step: int) -> float:
    torch.manual_seed(step_seed(module.config.seed, rank, step))
    return float(module.model(batch, n_cycles=1, diffusion_batch=2)["sigma"][0, 0])


def test_ranks_draw_different_noise_and_the_same_cycles(make_config):
    torch.set_num_threads(1)
    module = SeedFoldModule(make_config(max_cycles=4))
    dm = StructureDataModule(module.config.data, seed=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    for step in (0, 7):
        a, b = first_sigma(module, batch, 0, step), first_sigma(module, batch, 1, step)
        assert a != b, "ranks 0 and 1 drew the same sigma"
        assert first_sigma(module, batch, 0, step) == a, "the stream of (seed, rank, step) is not reproducible"
    seeds = {step_seed(0, r, s) for r in range(8) for s in range(100)}
    assert len(seeds) == 800
    assert step_seed(0, 1, 0) != step_seed(1, 0, 0) != step_seed(0, 0, 1)


def test_every_trainable_parameter_gets_a_gradient_so_plain_ddp_works(make_config):
    """DDP runs with find_unused_parameters=False: a trainable parameter without a gradient would hang it."""
    torch.set_num_threads(1)
    for confidence in (False, True):
        module = SeedFoldModule(make_config(confidence_loss=confidence, max_cycles=2))
        dm = StructureDataModule(module.config.data, seed=0)
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))
        frozen = [n for n, p in module.model.named_parameters() if not p.requires_grad]
        head = [n for n, _ in module.model.confidence_head.named_parameters()]
        assert len(frozen) == (0 if confidence else len(head)) and len(head) > 0
        opt = module.configure_optimizers()["optimizer"]
        assert sum(len(g["params"]) for g in opt.param_groups) == len(module.trainable_parameters())
        for n_cycles in (1, 2):
            module.zero_grad(set_to_none=True)
            module._loss(batch, n_cycles, 2)["loss"].backward()
            missing = [n for n, p in module.model.named_parameters() if p.requires_grad and p.grad is None]
            assert missing == [], (confidence, n_cycles, missing[:5])


def test_optimizer_state_is_copied_in_place(make_config):
    layer = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    layer(torch.randn(2, 4)).sum().backward()
    opt.step()
    saved = {k: v for k, v in opt.state_dict().items()}
    saved = {"state": {i: {k: v.clone() + 1 for k, v in s.items()} for i, s in saved["state"].items()},
             "param_groups": [dict(g, lr=5e-4) for g in saved["param_groups"]]}
    before = {id(opt.state[p]["exp_avg"]): opt.state[p]["exp_avg"].data_ptr() for p in layer.parameters()}
    load_optimizer_state_inplace(opt, saved)
    for i, p in enumerate(layer.parameters()):
        assert opt.state[p]["exp_avg"].data_ptr() in before.values()  # the same storage, no new allocation
        assert torch.equal(opt.state[p]["exp_avg"], saved["state"][i]["exp_avg"])
    assert opt.param_groups[0]["lr"] == 5e-4


def test_devices_auto_counts_visible_gpus(make_config):
    assert local_devices(make_config(accelerator="cpu").train) == 1
    assert local_devices(make_config(devices=2).train) == 2
    expected = max(torch.cuda.device_count(), 1) if torch.cuda.is_available() else 1
    assert local_devices(make_config(accelerator="gpu").train) == expected
