"""The confidence head's optimiser group: Adam's ε scaled by α_conf, so the head learns as from an unweighted loss."""

import copy

import pytest
import torch

from harness.data.datamodule import StructureDataModule
from harness.recipe import resolve
from harness.train.module import SeedFoldModule, load_optimizer_state_inplace, split_param_groups


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from tests.harness.train.conftest import mini_config

    dm = StructureDataModule(mini_config(tmp_path_factory.mktemp("b")).data, seed=0)
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def adam(groups, config):
    t = config.train
    return torch.optim.Adam(groups, lr=t.lr, betas=t.betas, eps=t.eps)


def test_the_head_has_its_own_group_with_eps_times_the_confidence_weight(make_config):
    module = SeedFoldModule(make_config(confidence_loss=True))
    groups = module.configure_optimizers()["optimizer"].param_groups
    assert [g["name"] for g in groups] == ["model", "confidence_head"]
    assert groups[0]["eps"] == 1e-8 and groups[1]["eps"] == pytest.approx(1e-8 * 1e-4)
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in module.model.confidence_head.parameters()}
    assert resolve(module.config).confidence_adam_eps == pytest.approx(1e-12)  # what dry-run and config.yaml show
    plain = SeedFoldModule(make_config(confidence_loss=False))
    assert [g["name"] for g in plain.configure_optimizers()["optimizer"].param_groups] == ["model"]
    assert resolve(plain.config).confidence_adam_eps is None


def test_the_head_steps_as_if_its_loss_were_unweighted_and_the_literal_eps_would_damp_it(make_config, batch):
    """Three Adam steps of the full weighted loss move the head exactly as if its loss were unweighted (its
    gradients ×1/α_conf at ε = 1e-8; the trunk's steps are the same in both); the literal ε damps it."""
    torch.set_num_threads(1)
    base = SeedFoldModule(make_config(confidence_loss=True))
    alpha = base.loss_weights["confidence"]

    def run(groups, head_grad_scale=1.0, steps=3):
        m = copy.deepcopy(base)
        opt = adam(groups(m), m.config)
        start = [p.detach().clone() for p in m.model.confidence_head.parameters()]
        for k in range(steps):
            torch.manual_seed(10 + k)  # the same noise and rollout in every run
            opt.zero_grad()
            m._loss(batch, 1, 2)["loss"].backward()  # 4·diffusion + 0.03·distogram + α_conf·confidence
            for p in m.model.confidence_head.parameters():
                p.grad.mul_(head_grad_scale)
            opt.step()
        return torch.cat([(p.detach() - s).flatten() for p, s in
                          zip(m.model.confidence_head.parameters(), start, strict=True)])

    def two_groups_literal(m):
        return [dict(g, eps=m.config.train.eps) for g in m.parameter_groups()]

    scaled = run(SeedFoldModule.parameter_groups)
    unweighted = run(two_groups_literal, head_grad_scale=1 / alpha)
    literal = run(two_groups_literal)
    moved = unweighted.abs() > 0
    assert moved.float().mean() > 0.3  # the zero-initialised projections open up after the first step
    torch.testing.assert_close(scaled, unweighted, rtol=1e-3, atol=5e-6)  # float32 rounding near 0
    ratio = (literal[moved].abs() / unweighted[moved].abs()).median()
    halved = float((literal[moved].abs() < 0.5 * unweighted[moved].abs()).float().mean())
    # Measured at initialisation: median 0.75x, a third of the moving parameters at under half their step
    # (after 100 steps of training the head's RMS gradient is below 1e-8 for 55 % of its parameters).
    assert ratio < 0.9 and halved > 0.25, (ratio, halved)


def test_a_one_group_checkpoint_loads_into_the_two_groups(make_config, batch):
    """Checkpoints from before the split hold one group; the head's parameters are last in it."""
    torch.set_num_threads(1)
    module = SeedFoldModule(make_config(confidence_loss=True))
    old = adam([{"params": module.trainable_parameters()}], module.config)
    module._loss(batch, 1, 2)["loss"].backward()
    old.step()
    saved = copy.deepcopy(old.state_dict())
    assert len(saved["param_groups"]) == 1
    new = adam(module.parameter_groups(), module.config)
    load_optimizer_state_inplace(new, saved)
    for p in module.trainable_parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(new.state[p][key], old.state[p][key], rtol=0, atol=0)
    assert [g["eps"] for g in new.param_groups] == [1e-8, pytest.approx(1e-12)]
    checkpoint = {"optimizer_states": [copy.deepcopy(saved)], "harness": None}
    with pytest.raises(TypeError):  # the harness section is absent here; the split happens before reading it
        module.on_load_checkpoint(checkpoint)
    assert [g["name"] for g in checkpoint["optimizer_states"][0]["param_groups"]] == ["model", "confidence_head"]
    fresh = adam(module.parameter_groups(), module.config)
    fresh.load_state_dict(checkpoint["optimizer_states"][0])  # what Lightning does after the hook
    assert fresh.param_groups[1]["eps"] == pytest.approx(1e-12)

    trimmed = copy.deepcopy(saved)
    trimmed["param_groups"][0]["params"] = trimmed["param_groups"][0]["params"][:-1]
    with pytest.raises(ValueError, match="the checkpoint is of another model"):
        split_param_groups(trimmed, module.parameter_groups())
