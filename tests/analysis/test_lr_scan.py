"""Choosing a configuration's learning rate from its scan (analysis/lr_scan.py)."""

import math

import numpy as np
import pytest

from analysis.lr_scan import choose_lr, round_lr


def test_the_minimum_of_a_parabola_in_log_lr_rounded_to_two_digits():
    lrs = np.array([5e-4, 1e-3, 2e-3, 4e-3, 8e-3])
    x = np.log10(lrs)
    losses = 3.0 + 2.0 * (x - math.log10(2.6e-3)) ** 2  # true minimum at 2.6e-3
    choice = choose_lr(lrs, losses)
    assert choice.lr == 2.6e-3 and not choice.at_edge
    assert choice.predict(np.array([2.6e-3]))[0] == pytest.approx(3.0)
    assert "parabola" in choice.note


def test_a_minimum_outside_the_scan_takes_the_edge_and_says_widen_it():
    lrs = [1e-3, 2e-3, 4e-3]
    choice = choose_lr(lrs, [5.0, 4.0, 3.5])  # still falling at the top
    assert choice.lr == 4e-3 and choice.at_edge and "widen the scan" in choice.note


def test_a_vertex_inside_the_scan_with_the_lowest_point_on_its_edge_is_flagged():
    """deep_structure in the committed study: 3.748 at 8e-3, 3.697 at 1.6e-2, the vertex just inside the range."""
    lrs = [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2]
    choice = choose_lr(lrs, [4.235, 3.946, 3.797, 3.748, 3.697])
    assert 8e-3 < choice.lr < 1.6e-2 and choice.at_edge
    assert "highest rate scanned" in choice.note and "widen the scan" in choice.note


def test_diverged_rates_are_left_out_and_named():
    choice = choose_lr([1e-3, 2e-3, 4e-3, 8e-3], [4.0, 3.6, 3.7, float("nan")])
    assert choice.diverged == (8e-3,)
    assert 1e-3 < choice.lr < 4e-3
    with pytest.raises(ValueError, match="every scanned learning rate diverged"):
        choose_lr([1e-3, 2e-3], [float("inf"), float("nan")])


def test_rounding_keeps_two_significant_digits():
    assert round_lr(0.0026349) == 0.0026 and round_lr(1.04e-3) == 0.001
