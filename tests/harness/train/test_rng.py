"""The training loop's random streams (harness/train/rng.py): one seeding helper that reproduces, to the value,
what every recorded run drew (the recycling counts and the per-rank seeds), and the global RNG state round trip."""

import random

import numpy as np
import pytest
import torch

from harness.train.rng import (
    RANK,
    RECYCLING,
    draw_cycles,
    global_rng_state,
    restore_global_rng_state,
    step_seed,
    stream_seed,
)


def test_the_recycling_counts_are_those_recorded_runs_drew():
    # Pinned from the training module before the split (its _n_cycles), seed 0 and 7, up to 4 cycles.
    assert [draw_cycles(0, step, micro, 4) for step in range(4) for micro in range(2)] == [1, 1, 2, 1, 1, 2, 3, 3]
    assert [draw_cycles(7, step, 0, 4) for step in range(8)] == [2, 3, 1, 3, 1, 3, 4, 3]
    assert stream_seed(RECYCLING, 7, 3, 1) == 7 * 1_000_003 + 3 + 7_919_993 * 1
    assert stream_seed(RECYCLING, 7, 3, 1, rank=5) == stream_seed(RECYCLING, 7, 3, 1)  # the same on every rank


def test_the_rank_stream_seeds_are_those_recorded_runs_used():
    assert step_seed(0, 0, 0, 0) == stream_seed(RANK, 0, 0, 0, 0) == 15793235383387715774
    assert step_seed(3, 1, 5, 2) == 14541057132210257744
    assert step_seed(3, 0, 5, 2) != step_seed(3, 1, 5, 2)


def test_an_unknown_stream_is_an_error():
    with pytest.raises(ValueError, match="unknown random stream 'dropout'"):
        stream_seed("dropout", 0, 0)


def test_the_global_rng_state_round_trips():
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    state = global_rng_state()
    drawn = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    restore_global_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(drawn[0], again[0]) and np.array_equal(drawn[1], again[1]) and drawn[2] == again[2]
