"""The Pairformer block's rewritten internals compute what the block computed before (frozen fixture)."""

import pytest
import torch

from tests.models.pairformer_fixture import CASES, FIXTURE, build, run


@pytest.mark.parametrize("case", list(CASES))
def test_block_matches_frozen_outputs_and_gradients(case):
    """Outputs, input gradients and every parameter's gradient sum and norm agree with the frozen values to
    fp32 rounding of a reordered computation (≤ 2e-5 of each quantity's scale)."""
    torch.set_num_threads(1)
    frozen = torch.load(FIXTURE)[case]
    got = run(build(case))
    assert set(got) == set(frozen)
    for key, want in frozen.items():
        scale = want.abs().max().item()
        err = (got[key] - want).abs().max().item()
        assert err <= 2e-5 * scale, f"{case} {key}: max error {err:.3g} > 2e-5 × {scale:.3g}"
