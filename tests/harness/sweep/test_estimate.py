"""The dry-run's memory estimate follows the model's settings it depends on."""

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
