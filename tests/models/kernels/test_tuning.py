"""The host-side tuner: on a GPU it times each compile-checked configuration once per problem and keeps the
fastest; elsewhere (interpreter, capture, CPU) the first configuration runs and nothing is timed."""

import pytest
import torch

from models.kernels import launch_config, tuning
from models.kernels.launch_config import Tiles

CONFIGS = (Tiles(64, 64, 4, 2), Tiles(64, 64, 4, 3), Tiles(32, 32, 4, 2))


@pytest.fixture(autouse=True)
def fresh():
    tuning.clear()
    yield
    tuning.clear()


def test_cpu_runs_the_first_configuration_untimed():
    ran = []
    assert tuning.tuned("k", torch.device("cpu"), ("key",), CONFIGS, lambda c: ran.append(c) or "out") == "out"
    assert ran == [CONFIGS[0]] and tuning.chosen() == {}


def test_gpu_times_each_configuration_once_and_keeps_the_fastest(monkeypatch):
    """Times stand in for do_bench (no GPU here); the selection and the cache are what is tested."""
    import triton.testing

    times = {CONFIGS[0]: 2.0, CONFIGS[1]: 1.0, CONFIGS[2]: 3.0}
    timed = []

    def do_bench(fn, warmup, rep):
        before = len(ran)
        fn()
        timed.append(ran[before])
        return times[ran[before]]

    monkeypatch.setattr(tuning, "_timing_possible", lambda device: True)
    monkeypatch.setattr(triton.testing, "do_bench", do_bench)
    monkeypatch.setattr(torch.cuda, "device", lambda device: __import__("contextlib").nullcontext())
    ran = []
    for _ in range(2):
        tuning.tuned("vanilla.fwd", torch.device("cuda", 0), ("n", 384), CONFIGS, ran.append)
    assert timed == list(CONFIGS)  # timed once each, at the first call only
    assert ran[-2:] == [CONFIGS[1], CONFIGS[1]]  # then the fastest, for the real call and the next one
    assert tuning.chosen() == {("vanilla.fwd", "cuda:0", "n", 384): "64x64/w4/s3"}


def test_candidates_are_one_wide_tile_under_the_interpreter_and_the_override_wins():
    if launch_config.INTERPRETING:
        assert launch_config.candidates(32, torch.bfloat16) == (Tiles(64, 64),)
    with launch_config.tile_override(16, 16):
        assert launch_config.candidates(128, torch.float32) == (Tiles(16, 16, 4, 2),)
    for (dims, dtype), configs in launch_config.CANDIDATES.items():
        assert configs and all(c.block_m >= 16 and c.block_n >= 16 for c in configs), (dims, dtype)
