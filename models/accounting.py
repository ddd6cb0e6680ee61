"""Analytic parameter counts and forward FLOPs of SeedFold, next to the model they describe.

``count_parameters`` mirrors the module constructors term by term and equals ``sum(p.numel())`` exactly.
``forward_flops`` counts matrix-multiply FLOPs (2·m·k·n per product, what ``FlopCounterMode`` counts) of one
training forward per example; elementwise ops, softmax, LayerNorm, cdist and gathers are not counted.
Cubic terms in the token count n are explicit: triangle multiplication 2n³h, triangle attention 4n³·W
(vanilla and gated) or 2n³·W + 4n²·W·d (additive), W = heads·head_dim.
"""

from __future__ import annotations

from models.config import ModelConfig
from models.modules.atom_attention import REF_FEATURE_DIM
from models.modules.confidence import N_CONFIDENCE_DISTANCE_BINS
from models.modules.msa_module import MSA_FEATURE_DIM
from models.modules.relpos import RelativePositionEncoding
from models.modules.template import TEMPLATE_FEATURE_DIM

# ---------------------------------------------------------------- parameters


def _lin(i: int, o: int, bias: bool = False) -> int:
    return i * o + (o if bias else 0)


def _ln(c: int) -> int:
    return 2 * c


def _transition(c: int, n: int) -> int:
    return _ln(c) + _lin(c, 2 * n * c) + _lin(n * c, c)


def _ada_ln(c_a: int, c_cond: int) -> int:
    return c_cond + _lin(c_cond, c_a, True) + _lin(c_cond, c_a)


def _apb(c_a: int, c_z: int, heads: int, c_cond: int | None) -> int:
    norm = _ada_ln(c_a, c_cond) if c_cond else _ln(c_a)
    gate = _lin(c_cond, c_a, True) if c_cond else 0
    return (
        norm
        + _lin(c_a, c_a, True)
        + _lin(c_a, 2 * c_a)
        + 2 * _lin(c_a, c_a)
        + _ln(c_z)
        + _lin(c_z, heads)
        + gate
    )


def _cond_transition(c_a: int, c_cond: int, n: int) -> int:
    return _ada_ln(c_a, c_cond) + 2 * _lin(c_a, n * c_a) + _lin(c_cond, c_a, True) + _lin(n * c_a, c_a)


def _pair_dims(cfg: ModelConfig, c_z: int) -> tuple[int, int, int]:
    hidden = cfg.tri_mul_hidden if (cfg.tri_mul_hidden and c_z == cfg.c_z) else c_z
    heads = max(1, c_z // cfg.tri_att_head_dim)
    return hidden, heads, heads * cfg.tri_att_head_dim


def _pair_block(cfg: ModelConfig, c_z: int) -> int:
    h, heads, w = _pair_dims(cfg, c_z)
    tri_mul = _ln(c_z) + 4 * _lin(c_z, h) + _lin(c_z, c_z) + _ln(h) + _lin(h, c_z)
    tri_att = _ln(c_z) + _lin(c_z, 3 * w) + _lin(c_z, heads) + _lin(c_z, w) + _lin(w, c_z)
    tri_att += _ln(w) if cfg.triangle_attention != "vanilla" else 0
    return 2 * tri_mul + 2 * tri_att + _transition(c_z, cfg.transition_expansion)


def _pairformer_block(cfg: ModelConfig) -> int:
    c_s = cfg.c_s
    return (
        _pair_block(cfg, cfg.c_z)
        + _apb(c_s, cfg.c_z, cfg.n_single_heads, None)
        + _transition(c_s, cfg.transition_expansion)
    )


def _relpos(cfg: ModelConfig) -> int:
    return _lin(RelativePositionEncoding.n_features(cfg.max_relative_idx, cfg.max_relative_chain), cfg.c_z)


def _atom_transformer(cfg: ModelConfig, n_blocks: int) -> int:
    c, n = cfg.c_atom, cfg.diffusion_transition_expansion
    return n_blocks * (_apb(c, cfg.c_atompair, cfg.n_atom_heads, c) + _cond_transition(c, c, n))


def _atom_encoder(cfg: ModelConfig, c_out: int, with_trunk: bool) -> int:
    ca, cp = cfg.c_atom, cfg.c_atompair
    total = _lin(REF_FEATURE_DIM, ca) + _lin(3, cp) + 2 * _lin(1, cp)
    if with_trunk:
        total += _ln(cfg.c_s) + _lin(cfg.c_s, ca) + _ln(cfg.c_z) + _lin(cfg.c_z, cp) + _lin(3, ca)
    total += 2 * _lin(ca, cp) + 3 * _lin(cp, cp)
    return total + _atom_transformer(cfg, cfg.n_atom_encoder_blocks) + _lin(ca, c_out)


def _parameter_breakdown(cfg: ModelConfig) -> dict[str, int]:
    c_s, c_z, s_in = cfg.c_s, cfg.c_z, cfg.s_inputs_dim
    out: dict[str, int] = {}
    out["input_embedder"] = (
        _atom_encoder(cfg, s_in - 65, False)
        + _lin(s_in, c_s)
        + 2 * _lin(s_in, c_z)
        + _relpos(cfg)
        + _lin(1, c_z)
    )
    out["recycling"] = _ln(c_s) + _lin(c_s, c_s) + _ln(c_z) + _lin(c_z, c_z)
    if cfg.use_templates:
        c_t = cfg.c_template
        out["template_embedder"] = (
            _ln(c_z) + _lin(c_z, c_t) + _lin(TEMPLATE_FEATURE_DIM, c_t)
            + cfg.n_template_blocks * _pair_block(cfg, c_t) + _ln(c_t) + _lin(c_t, c_z)
        )  # fmt: skip
    if cfg.n_msa_blocks > 0:
        c_m, h = cfg.c_m, cfg.opm_hidden
        opm = _ln(c_m) + _lin(c_m, 2 * h) + _lin(h * h, c_z, True)
        pw = cfg.pwa_heads * cfg.pwa_head_dim
        pwa = _ln(c_m) + _lin(c_m, 2 * pw) + _ln(c_z) + _lin(c_z, cfg.pwa_heads) + _lin(pw, c_m)
        msa_update = pwa + _transition(c_m, cfg.transition_expansion)
        out["msa_module"] = (
            _lin(MSA_FEATURE_DIM, c_m) + _lin(s_in, c_m)
            + cfg.n_msa_blocks * (opm + _pair_block(cfg, c_z)) + (cfg.n_msa_blocks - 1) * msa_update
        )  # fmt: skip
    out["pairformer"] = cfg.n_pairformer_blocks * _pairformer_block(cfg)
    out["distogram_head"] = _lin(c_z, cfg.n_distogram_bins)
    conditioning = (
        _relpos(cfg) + _ln(2 * c_z) + _lin(2 * c_z, c_z) + 2 * _transition(c_z, 2)
        + _ln(c_s + s_in) + _lin(c_s + s_in, c_s) + _ln(cfg.n_fourier) + _lin(cfg.n_fourier, c_s)
        + 2 * _transition(c_s, 2)
    )  # fmt: skip
    ct, n = cfg.c_token, cfg.diffusion_transition_expansion
    transformer = cfg.n_diffusion_blocks * (
        _apb(ct, c_z, cfg.n_diffusion_heads, c_s) + _cond_transition(ct, c_s, n)
    )
    decoder = _lin(ct, cfg.c_atom) + _atom_transformer(cfg, cfg.n_atom_decoder_blocks) + _ln(cfg.c_atom)
    decoder += _lin(cfg.c_atom, 3)
    out["diffusion_module"] = (
        conditioning
        + _atom_encoder(cfg, ct, True)
        + _ln(c_s)
        + _lin(c_s, ct)
        + transformer
        + _ln(ct)
        + decoder
    )
    if cfg.use_confidence_head:
        slots = cfg.max_atoms_per_token
        out["confidence_head"] = (
            2 * _lin(s_in, c_z) + 2 * _ln(c_s) + 2 * _ln(c_z) + _lin(N_CONFIDENCE_DISTANCE_BINS, c_z)
            + cfg.n_confidence_blocks * _pairformer_block(cfg)
            + _lin(c_z, cfg.n_pae_bins) + _lin(c_z, cfg.n_pde_bins)
            + _lin(c_s, slots * cfg.n_plddt_bins) + _lin(c_s, slots * 2)
            + (_ln(c_z) + _lin(c_z, c_s) if cfg.confidence_pair_readout else 0)
        )  # fmt: skip
    return out


def count_parameters(config: ModelConfig) -> dict[str, int]:
    """Parameter counts: ``total``; ``non_embedding`` (total minus the input embedder and the MSA module's
    input projections, which scale with the feature vocabulary, not with width or depth); ``pair_track``
    (every pair block: triangle updates and pair transitions of all pair stacks); and per module."""
    per_module = _parameter_breakdown(config)
    total = sum(per_module.values())
    embedding = per_module["input_embedder"]
    if config.n_msa_blocks > 0:
        embedding += _lin(MSA_FEATURE_DIM, config.c_m) + _lin(config.s_inputs_dim, config.c_m)
    n_pair = config.n_pairformer_blocks + config.n_msa_blocks
    n_pair += config.n_confidence_blocks if config.use_confidence_head else 0
    pair_track = n_pair * _pair_block(config, config.c_z)
    if config.use_templates:
        pair_track += config.n_template_blocks * _pair_block(config, config.c_template)
    return {"total": total, "non_embedding": total - embedding, "pair_track": pair_track, **per_module}


# ---------------------------------------------------------------- forward FLOPs


def _mm(rows: float, c_in: int, c_out: int) -> float:
    """FLOPs of a linear layer applied at ``rows`` positions."""
    return 2.0 * rows * c_in * c_out


def _transition_flops(rows: float, c: int, n: int) -> float:
    return _mm(rows, c, 2 * n * c) + _mm(rows, n * c, c)


def _tri_att_flops(cfg: ModelConfig, n: int, c_z: int, copies: int) -> float:
    _, heads, w = _pair_dims(cfg, c_z)
    d, p = cfg.tri_att_head_dim, copies * n * n
    linears = _mm(p, c_z, 3 * w) + _mm(p, c_z, heads) + _mm(p, c_z, w) + _mm(p, w, c_z)
    if cfg.triangle_attention == "additive":
        core = 2.0 * n**3 * w + 4.0 * n * n * w * d
    else:
        core = 4.0 * n**3 * w
    return linears + copies * core


def _pair_block_flops(cfg: ModelConfig, n: int, c_z: int, copies: int = 1) -> float:
    h, _, _ = _pair_dims(cfg, c_z)
    p = copies * n * n
    tri_mul = _mm(p, c_z, 4 * h) + _mm(p, c_z, c_z) + _mm(p, h, c_z) + copies * 2.0 * n**3 * h
    return (
        2 * tri_mul
        + 2 * _tri_att_flops(cfg, n, c_z, copies)
        + _transition_flops(p, c_z, cfg.transition_expansion)
    )


def _cond_transition_flops(rows: float, c: int, n: int, cond_rows: float, c_cond: int) -> float:
    """ConditionedTransition: AdaLN scale + shift and the output gate run on the conditioning rows."""
    return 3 * _mm(cond_rows, c_cond, c) + _mm(rows, c, 2 * n * c) + _mm(rows, n * c, c)


def _atom_layout(cfg: ModelConfig, n_atoms: int) -> tuple[int, int]:
    n_blocks = -(-n_atoms // cfg.atom_window_queries)
    return n_blocks, n_blocks * cfg.atom_window_queries * cfg.atom_window_keys


def _atom_transformer_flops(cfg: ModelConfig, n_atoms: int, copies: int, n_blocks_tf: int) -> float:
    c, cp, n = cfg.c_atom, cfg.c_atompair, cfg.diffusion_transition_expansion
    n_blocks, pairs = _atom_layout(cfg, n_atoms)
    q_pad = n_blocks * cfg.atom_window_queries
    per = (
        _mm(copies * n_atoms, c, 5 * c)
        + _mm(pairs, cp, cfg.n_atom_heads)
        + 4.0 * copies * q_pad * cfg.atom_window_keys * c
        + 3 * _mm(n_atoms, c, c)
        + _cond_transition_flops(copies * n_atoms, c, n, n_atoms, c)
    )
    return n_blocks_tf * per


def _atom_encoder_flops(
    cfg: ModelConfig, n: int, n_atoms: int, copies: int, c_out: int, trunk: bool
) -> float:
    ca, cp = cfg.c_atom, cfg.c_atompair
    n_blocks, pairs = _atom_layout(cfg, n_atoms)
    total = _mm(n_atoms, REF_FEATURE_DIM, ca) + _mm(pairs, 3, cp) + 2 * _mm(pairs, 1, cp)
    if trunk:
        total += _mm(n, cfg.c_s, ca) + _mm(n * n, cfg.c_z, cp) + _mm(copies * n_atoms, 3, ca)
    total += _mm(n_blocks * cfg.atom_window_queries, ca, cp) + _mm(n_blocks * cfg.atom_window_keys, ca, cp)
    total += 3 * _mm(pairs, cp, cp)
    total += _atom_transformer_flops(cfg, n_atoms, copies, cfg.n_atom_encoder_blocks)
    return total + _mm(copies * n_atoms, ca, c_out)


def _pairformer_flops(cfg: ModelConfig, n: int, n_blocks: int, copies: int = 1) -> float:
    c_s = cfg.c_s
    single = (
        _mm(copies * n, c_s, 5 * c_s)
        + _mm(copies * n * n, cfg.c_z, cfg.n_single_heads)
        + 4.0 * copies * n * n * c_s
        + _transition_flops(copies * n, c_s, cfg.transition_expansion)
    )
    return n_blocks * (_pair_block_flops(cfg, n, cfg.c_z, copies) + single)


def forward_flops(
    config: ModelConfig,
    *,
    n_tokens: int,
    n_atoms: int,
    n_msa: int,
    diffusion_batch: int = 1,
    n_cycles: int = 1,
    n_templates: int = 0,
    confidence: bool = False,
    rollout_steps: int = 20,
) -> dict[str, float]:
    """Matrix-multiply FLOPs of one training forward of one example, per module and ``total``.

    n_tokens, n_atoms, n_msa: real sizes of the example (not the crop size). The trunk (recycling, templates,
    MSA module, Pairformer) counts ``n_cycles`` times; the diffusion module runs on ``diffusion_batch`` copies.
    With ``confidence``, adds the confidence head and its ``rollout_steps``-step one-sample rollout.
    """
    cfg, n, a, s = config, n_tokens, n_atoms, n_msa
    c_s, c_z, s_in, p = cfg.c_s, cfg.c_z, cfg.s_inputs_dim, n * n
    # The relative-position encoding is embedding lookups (models.modules.relpos): no matrix multiply, where AF3's
    # one-hot formulation would count 2·N²·139·c_z.
    relpos = 0.0
    out: dict[str, float] = {}
    out["input_embedder"] = (
        _atom_encoder_flops(cfg, n, a, 1, s_in - 65, False)
        + _mm(n, s_in, c_s) + 2 * _mm(n, s_in, c_z) + relpos + _mm(p, 1, c_z)
    )  # fmt: skip
    trunk = {"recycling": _mm(n, c_s, c_s) + _mm(p, c_z, c_z)}
    if cfg.use_templates and n_templates > 0:
        c_t = cfg.c_template
        trunk["template_embedder"] = (
            _mm(p, c_z, c_t) + _mm(n_templates * p, TEMPLATE_FEATURE_DIM, c_t)
            + cfg.n_template_blocks * _pair_block_flops(cfg, n, c_t, n_templates) + _mm(p, c_t, c_z)
        )  # fmt: skip
    if cfg.n_msa_blocks > 0:
        c_m, h, nb = cfg.c_m, cfg.opm_hidden, cfg.n_msa_blocks
        pw, heads = cfg.pwa_heads * cfg.pwa_head_dim, cfg.pwa_heads
        opm = _mm(s * n, c_m, 2 * h) + 2.0 * s * p * h * h + 2.0 * s * p + _mm(p, h * h, c_z)
        pwa = _mm(s * n, c_m, 2 * pw) + _mm(p, c_z, heads) + 2.0 * s * p * pw + _mm(s * n, pw, c_m)
        update = pwa + _transition_flops(s * n, c_m, cfg.transition_expansion)
        trunk["msa_module"] = (
            _mm(s * n, MSA_FEATURE_DIM, c_m) + _mm(n, s_in, c_m)
            + nb * (opm + _pair_block_flops(cfg, n, c_z)) + (nb - 1) * update
        )  # fmt: skip
    trunk["pairformer"] = _pairformer_flops(cfg, n, cfg.n_pairformer_blocks)
    out.update({k: n_cycles * v for k, v in trunk.items()})
    out["distogram_head"] = _mm(p, c_z, cfg.n_distogram_bins)
    out["diffusion_module"] = _diffusion_flops(cfg, n, a, diffusion_batch, relpos)
    if confidence:
        slots = cfg.max_atoms_per_token
        rollout = rollout_steps * (_diffusion_flops(cfg, n, a, 1, 0.0) - _diffusion_pair_flops(cfg, n))
        out["confidence_head"] = (
            rollout + _diffusion_pair_flops(cfg, n) + relpos
            + 2 * _mm(n, s_in, c_z) + _mm(p, N_CONFIDENCE_DISTANCE_BINS, c_z)
            + _pairformer_flops(cfg, n, cfg.n_confidence_blocks)
            + _mm(p, c_z, cfg.n_pae_bins) + _mm(p, c_z, cfg.n_pde_bins)
            + _mm(n, c_s, slots * cfg.n_plddt_bins) + _mm(n, c_s, slots * 2)
            + (_mm(n, c_z, c_s) if cfg.confidence_pair_readout else 0)
        )  # fmt: skip
    out["total"] = sum(out.values())
    return out


def train_flops(
    config: ModelConfig,
    *,
    n_tokens: int,
    n_atoms: int,
    n_msa: int,
    n_cycles: int,
    diffusion_batch: int,
    confidence: bool = False,
    rollout_steps: int = 20,
) -> float:
    """FLOPs of one training example, the one formula for the dry-run and the run's ``perf/flops_*``.

    Forward of every cycle, plus backward (~2x forward) of what gradients reach: the last cycle with the input
    embedder, distogram head and diffusion module; with ``confidence`` also the confidence head (its
    ``rollout_steps`` sampler steps run without autograd, so they count forward only).
    """
    kw = dict(n_tokens=n_tokens, n_atoms=n_atoms, n_msa=max(n_msa, 1), diffusion_batch=diffusion_batch)
    forward = forward_flops(config, n_cycles=n_cycles, confidence=confidence, rollout_steps=rollout_steps, **kw)
    backward = 2 * forward_flops(config, n_cycles=1, **kw)["total"]
    if confidence:
        n, a = n_tokens, n_atoms
        rollout = rollout_steps * (_diffusion_flops(config, n, a, 1, 0.0) - _diffusion_pair_flops(config, n))
        backward += 2 * (forward["confidence_head"] - rollout)
    return float(forward["total"] + backward)


def _diffusion_pair_flops(cfg: ModelConfig, n: int) -> float:
    """The σ-independent pair conditioning (without relpos), computed once per sampler run."""
    p = n * n
    return _mm(p, 2 * cfg.c_z, cfg.c_z) + 2 * _transition_flops(p, cfg.c_z, 2)


def _diffusion_flops(cfg: ModelConfig, n: int, a: int, copies: int, relpos: float) -> float:
    c_s, c_z, s_in, ct = cfg.c_s, cfg.c_z, cfg.s_inputs_dim, cfg.c_token
    conditioning = (
        relpos + _diffusion_pair_flops(cfg, n)
        + _mm(n, c_s + s_in, c_s) + _mm(copies, cfg.n_fourier, c_s) + 2 * _transition_flops(copies * n, c_s, 2)
    )  # fmt: skip
    rows = copies * n
    block = (
        _mm(rows, ct, 5 * ct) + _mm(n * n, c_z, cfg.n_diffusion_heads) + 4.0 * rows * n * ct
        + 3 * _mm(rows, c_s, ct)
        + 3 * _mm(rows, c_s, ct) + _transition_flops(rows, ct, cfg.diffusion_transition_expansion)
    )  # fmt: skip
    decoder = (
        _mm(copies * a, ct, cfg.c_atom)
        + _atom_transformer_flops(cfg, a, copies, cfg.n_atom_decoder_blocks)
        + _mm(copies * a, cfg.c_atom, 3)
    )
    return (
        conditioning
        + _atom_encoder_flops(cfg, n, a, copies, ct, True)
        + _mm(rows, c_s, ct)
        + cfg.n_diffusion_blocks * block
        + decoder
    )
