"""The paper's configurations as data (docs/DESIGN.md §1.4) and the miniaturisation rule of the ``mini`` profile.

Each preset is a dict of overrides of ``ModelConfig`` defaults (AF3's). ``PAPER_PARAMS`` holds the parameter
counts the paper reports, which ``tests/models/test_presets.py`` checks to within 10%.

Assumption needed to match the paper: the diffusion and atom transformers' conditioned transitions use
expansion 4 (``diffusion_transition_expansion=4``) instead of AF3's 2. With AF3's 2 the base model has
368M parameters (-15% vs 432M), and the 24 extra diffusion blocks of deep_structure add 198M instead of the
paper's 274M; with 4 each diffusion block has 11.8M parameters and the five presets land within +1..+5%
(base 453.6M, medium 549.7M, large 931.9M, deep_pairformer 601.0M, deep_structure 736.9M).
"""

from __future__ import annotations

import math

from models.config import ModelConfig

_PAPER_SHARED = {"diffusion_transition_expansion": 4}

PRESETS: dict[str, dict] = {
    "af3": {},
    "base": {**_PAPER_SHARED, "c_z": 128, "c_m": 64},
    "medium": {**_PAPER_SHARED, "c_z": 256, "c_m": 128},
    "w384": {**_PAPER_SHARED, "c_z": 384, "c_m": 192},
    "large": {**_PAPER_SHARED, "c_z": 512, "c_m": 256},
    "deep_pairformer": {**_PAPER_SHARED, "c_z": 128, "c_m": 64, "n_pairformer_blocks": 96},
    "deep_structure": {**_PAPER_SHARED, "c_z": 128, "c_m": 64, "n_diffusion_blocks": 48},
    "seedfold": {**_PAPER_SHARED, "c_z": 512, "c_m": 256},
    "seedfold_linear": {**_PAPER_SHARED, "c_z": 384, "c_m": 192, "triangle_attention": "gated"},
}

PAPER_PARAMS: dict[str, float] = {
    "base": 432e6,
    "medium": 533e6,
    "large": 923e6,
    "deep_pairformer": 582e6,
    "deep_structure": 706e6,
}


def get_preset(name: str, **overrides) -> ModelConfig:
    """The ModelConfig of preset ``name`` with optional field overrides."""
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; expected one of {sorted(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides})


# Reference widths/depths the miniature rule divides by: AF3's defaults.
_REF = ModelConfig()


def miniaturize(
    config: ModelConfig,
    *,
    c_z: int = 16,
    c_s: int = 32,
    pairformer_blocks: int = 2,
    diffusion_blocks: int = 1,
    c_atom: int = 16,
    c_token: int = 64,
    head_dim: int = 8,
) -> ModelConfig:
    """Shrink ``config`` to CPU size keeping its shape relative to AF3's base.

    Rule: every pair width scales with c_z / 128 applied to the preset's c_z (so base -> ``c_z``, medium ->
    2·c_z, large -> 4·c_z, and c_m keeps its ratio c_m / c_z); depths scale with the preset's depth / AF3's
    depth times the target depth (base -> ``pairformer_blocks``, deep_pairformer -> 2x). Single, atom and
    diffusion widths take the given values; triangle-attention head dim becomes ``head_dim`` so the
    width rule (heads = c_z / head_dim) keeps the head count growing with width. Atom encoder/decoder 1 block,
    1 MSA block, no templates, confidence head 1 block.
    """
    width = config.c_z / _REF.c_z
    mini_c_z = max(head_dim, int(round(c_z * width / head_dim)) * head_dim)
    depth_pf = config.n_pairformer_blocks / _REF.n_pairformer_blocks
    depth_diff = config.n_diffusion_blocks / _REF.n_diffusion_blocks
    single_heads = 4
    return config.model_copy(
        update={
            "c_z": mini_c_z,
            "c_m": max(8, int(round(mini_c_z * config.c_m / config.c_z))),
            "c_s": c_s,
            "c_atom": c_atom,
            "c_atompair": max(4, c_atom // 2),
            "c_token": c_token,
            "tri_att_head_dim": head_dim,
            "tri_mul_hidden": None,
            "n_single_heads": single_heads,
            "opm_hidden": 8,
            "pwa_heads": 2,
            "pwa_head_dim": 8,
            "n_pairformer_blocks": max(1, math.ceil(pairformer_blocks * depth_pf)),
            "n_msa_blocks": 1,
            "n_template_blocks": 1,
            "n_diffusion_blocks": max(1, math.ceil(diffusion_blocks * depth_diff)),
            "n_diffusion_heads": 4,
            "n_atom_encoder_blocks": 1,
            "n_atom_decoder_blocks": 1,
            "n_atom_heads": 2,
            "n_confidence_blocks": 1,
            "atom_window_queries": 16,
            "atom_window_keys": 32,
            "n_fourier": 32,
            "c_template": max(8, head_dim),
            "use_templates": False,
        }
    )
