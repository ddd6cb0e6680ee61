"""The learning-rate schedule and the stability guard's decisions, step by step."""

import math

import pytest

from harness.config import GuardConfig, TrainConfig
from harness.train.guard import Action, StabilityGuard
from harness.train.schedule import lr_multiplier


def test_warmup_then_stepwise_decay():
    t = TrainConfig(warmup_steps=10, lr_decay_every=100, lr_decay_factor=0.95)
    assert lr_multiplier(0, t) == pytest.approx(0.1)
    assert lr_multiplier(9, t) == pytest.approx(1.0)
    assert lr_multiplier(99, t) == pytest.approx(1.0)
    assert lr_multiplier(100, t) == pytest.approx(0.95)
    assert lr_multiplier(250, t) == pytest.approx(0.95**2)


def test_nonfinite_steps_skip_then_roll_back():
    g = StabilityGuard(GuardConfig(max_nonfinite=2))
    assert g.observe(1.0, 1.0) is Action.APPLY
    assert g.observe(math.nan, None) is Action.SKIP
    assert g.observe(1.0, math.inf) is Action.ROLLBACK
    assert g.skipped == 2
    g.rolled_back()
    assert g.rollbacks == 1 and g.consecutive_nonfinite == 0


def test_persistent_spike_rolls_back_a_single_one_does_not():
    g = StabilityGuard(GuardConfig(spike_window=5, spike_factor=3.0, spike_patience=3))
    assert g.observe(100.0, 1.0) is Action.APPLY  # window not full: no spike judgement yet
    for _ in range(4):
        assert g.observe(1.0, 1.0) is Action.APPLY
    assert g.observe(2.9, 1.0) is Action.APPLY
    assert g.observe(10.0, 1.0) is Action.APPLY  # one noisy batch
    assert g.observe(1.0, 1.0) is Action.APPLY
    assert g.observe(10.0, 1.0) is Action.APPLY
    assert g.observe(10.0, 1.0) is Action.APPLY
    assert g.observe(10.0, 1.0) is Action.ROLLBACK  # a collapse: three in a row


def test_rollbacks_are_bounded():
    g = StabilityGuard(GuardConfig(max_nonfinite=1, max_rollbacks=1))
    assert g.observe(math.nan, None) is Action.ROLLBACK
    g.rolled_back()
    assert g.observe(math.nan, None) is Action.SKIP


def test_guard_state_round_trips():
    g = StabilityGuard(GuardConfig())
    for x in (1.0, 2.0, math.nan):
        g.observe(x, 1.0)
    h = StabilityGuard(GuardConfig())
    h.load_state_dict(g.state_dict())
    assert h.state_dict() == g.state_dict()


def test_wsd_warmup_stable_then_cooldown_to_zero():
    t = TrainConfig(max_steps=100, warmup_steps=10,
                    schedule={"kind": "wsd", "decay_fraction": 0.2, "decay_shape": "linear"})
    assert t.schedule.decay_start(100) == 80
    assert lr_multiplier(0, t) == pytest.approx(0.1)
    assert lr_multiplier(9, t) == pytest.approx(1.0)
    assert lr_multiplier(79, t) == pytest.approx(1.0)  # stable to the cooldown, no step decay
    assert lr_multiplier(80, t) == pytest.approx(1.0)
    assert lr_multiplier(90, t) == pytest.approx(0.5)
    assert lr_multiplier(99, t) == pytest.approx(0.05)
    sqrt = t.model_copy(update={"schedule": t.schedule.model_copy(update={"decay_shape": "1-sqrt"})})
    assert lr_multiplier(90, sqrt) == pytest.approx(1 - math.sqrt(0.5))
    # A shorter run of the same configuration follows the same rates until its own cooldown.
    short = t.model_copy(update={"max_steps": 50})
    assert [lr_multiplier(s, short) for s in range(40)] == [lr_multiplier(s, t) for s in range(40)]
    assert lr_multiplier(45, short) < 1.0 == lr_multiplier(45, t)


def test_wsd_cooldown_before_warmup_ends_is_a_config_error():
    with pytest.raises(ValueError, match="cooldown would start at step 16, before the warmup ends"):
        TrainConfig(max_steps=20, warmup_steps=18, schedule={"kind": "wsd", "decay_fraction": 0.2})
