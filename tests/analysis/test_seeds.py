"""A configuration's value from its seeds: mean, t-interval, the estimator noise as a floor, one-seed honesty."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.seeds import difference, estimate


def test_seed_spread_gives_a_t_interval():
    e = estimate(np.array([1.0, 1.2, 1.4]), np.array([0.01, 0.01, 0.01]))
    half = stats.t.ppf(0.975, 2) * 0.2 / math.sqrt(3)
    assert e.mean == pytest.approx(1.2) and e.high - e.mean == pytest.approx(half)
    assert e.seed_spread_known and e.n_seeds == 3 and e.noise == pytest.approx(0.01)


def test_recorded_noise_is_a_floor_under_a_small_spread():
    e = estimate(np.array([2.0, 2.0, 2.0]), np.array([0.1, 0.1, 0.1]))
    assert e.se == pytest.approx(0.1 / math.sqrt(3))


def test_one_seed_interval_is_the_estimator_noise_alone_or_unknown():
    e = estimate(np.array([3.0]), np.array([0.02]))
    assert not e.seed_spread_known
    assert e.high - e.mean == pytest.approx(stats.norm.ppf(0.975) * 0.02)
    unknown = estimate(np.array([3.0]))
    assert math.isnan(unknown.low) and "interval n/a" in unknown.text()
    d = difference(e, estimate(np.array([2.0]), np.array([0.02])))
    assert d.value == pytest.approx(1.0) and d.se == pytest.approx(0.02 * math.sqrt(2))


def test_interval_covers_the_truth_at_its_nominal_rate():
    # 400 experiments of 3 seeds, spread 0.1, truth 5: a 95% interval should cover ~95% of the time.
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        e = estimate(rng.normal(5.0, 0.1, 3), np.full(3, 0.01))
        hits += e.low <= 5.0 <= e.high
    assert 0.92 <= hits / 400 <= 0.98
