"""The dry-run's memory estimate follows the model's settings it depends on."""

import pytest

from harness.config import RunConfig
from harness.sweep.estimate import ExampleSize, memory_gb


def test_sequential_block_order_keeps_one_more_residual_per_transformer_block():
    spec = {"preset": "base", "miniature": True}
    seq = RunConfig(model=spec)
    par = RunConfig(model=spec | {"transformer_block_order": "parallel"})
    example = ExampleSize(n_tokens=32, n_atoms=256, n_msa=8)
    m = seq.model
    # copies alive = diffusion batch 8 (no chunking); one token-sized tensor per diffusion block and one
    # atom-sized tensor per atom block, fp32
    extra = 8 * 4 * (m.n_diffusion_blocks * 32 * m.c_token
                     + (m.n_atom_encoder_blocks + m.n_atom_decoder_blocks) * 256 * m.c_atom)
    for ckpt in (False, True):
        diff = memory_gb(seq, example, 8, checkpointed=ckpt) - memory_gb(par, example, 8, checkpointed=ckpt)
        expected = extra if not ckpt else 8 * 4 * (32 * m.c_token + (m.n_atom_encoder_blocks
                                                                     + m.n_atom_decoder_blocks) * 256 * m.c_atom)
        assert abs(diff * 1e9 - expected) < 1e-3


def test_msa_rows_are_accounted_in_memory_and_flops():
    spec = {"preset": "base", "miniature": True}
    deep = RunConfig(model=spec, data={"max_msa_rows": 1024, "max_msa_rows_cached": 16384})
    shallow = RunConfig(model=spec, data={"max_msa_rows": 16})
    m = deep.model
    n, rows = 32, (1024, 16)
    big, small = (ExampleSize(n_tokens=n, n_atoms=256, n_msa=r) for r in rows)
    msa = [1 * r * n * m.c_m * 4 for r in rows]  # fp32 trunk: one MSA-sized tensor, bytes
    plain = memory_gb(deep, big, 8, checkpointed=False) - memory_gb(shallow, small, 8, checkpointed=False)
    assert plain * 1e9 == pytest.approx(m.n_msa_blocks * 28 * (msa[0] - msa[1]), rel=1e-9)
    # checkpointed: each MSA block's saved input, plus one MSA block's intermediates while it is recomputed
    ckpt = memory_gb(deep, big, 8, checkpointed=True) - memory_gb(shallow, small, 8, checkpointed=True)
    assert ckpt * 1e9 == pytest.approx((m.n_msa_blocks + 28) * (msa[0] - msa[1]), rel=1e-9)
    from harness.sweep.estimate import example_flops

    assert example_flops(deep, big, n_cycles=1, diffusion_batch=8) > example_flops(shallow, small, n_cycles=1,
                                                                                    diffusion_batch=8)
