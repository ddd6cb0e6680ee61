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
