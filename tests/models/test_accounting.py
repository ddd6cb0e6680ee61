"""Analytic parameter counts equal the built modules exactly; analytic FLOPs agree with FlopCounterMode."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from models.accounting import count_parameters, forward_flops
from models.model import SeedFold
from models.presets import PAPER_PARAMS, PRESETS, get_preset, miniaturize
from tests.models.conftest import collate, random_example, tiny_config


def _module_counts(model: SeedFold) -> dict[str, int]:
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    counts["recycling"] = sum(
        counts.pop(k) for k in ("norm_s_prev", "proj_s_prev", "norm_z_prev", "proj_z_prev")
    )
    return counts


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parameter_count_equals_built_model(name):
    config = get_preset(name)
    with torch.device("meta"):
        model = SeedFold(config)
    analytic = count_parameters(config)
    assert analytic["total"] == sum(p.numel() for p in model.parameters())
    for module, count in _module_counts(model).items():
        assert analytic[module] == count, module
    assert 0 < analytic["pair_track"] < analytic["non_embedding"] < analytic["total"]


@pytest.mark.parametrize(
    "overrides",
    [
        dict(use_templates=True, triangle_attention="additive", tri_mul_hidden=8),
        dict(n_msa_blocks=0, use_confidence_head=False, triangle_attention="gated"),
        dict(confidence_pair_readout=True, n_confidence_blocks=2),
    ],
)
def test_parameter_count_equals_built_model_for_switches(overrides):
    config = tiny_config(**overrides)
    model = SeedFold(config)
    assert count_parameters(config)["total"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_presets_within_ten_percent_of_paper(name):
    total = count_parameters(get_preset(name))["total"]
    assert abs(total / PAPER_PARAMS[name] - 1) < 0.10


def test_af3_defaults_alone_miss_the_paper():
    # Documents why presets set diffusion_transition_expansion=4 (models/presets.py).
    total = count_parameters(get_preset("base", diffusion_transition_expansion=2))["total"]
    assert total / PAPER_PARAMS["base"] < 0.9


@pytest.mark.parametrize("variant", ["vanilla", "additive", "gated"])
def test_forward_flops_match_flop_counter(variant):
    config = tiny_config(triangle_attention=variant, kernel_impl="torch", use_confidence_head=False)
    model = SeedFold(config)
    batch = collate([random_example(20, atoms_per_token=5, n_msa=4)])
    counter = FlopCounterMode(display=False)
    with counter:
        model(batch, n_cycles=2, diffusion_batch=3, generator=torch.Generator().manual_seed(0))
    analytic = forward_flops(config, n_tokens=20, n_atoms=100, n_msa=4, diffusion_batch=3, n_cycles=2)
    assert analytic["total"] == pytest.approx(counter.get_total_flops(), rel=0.10)
    per_module = {
        k.split(".")[-1]: sum(v.values()) for k, v in counter.get_flop_counts().items() if k.count(".") == 1
    }
    for module in ("pairformer", "msa_module", "diffusion_module", "input_embedder"):
        assert analytic[module] == pytest.approx(per_module[module], rel=0.10), module


def test_cubic_terms_follow_the_attention_variant():
    def pairformer(variant: str, n: int) -> float:
        cfg = get_preset("base", triangle_attention=variant)
        return forward_flops(cfg, n_tokens=n, n_atoms=10 * n, n_msa=1)["pairformer"]

    # vanilla/gated attention core 4n³W; additive 2n³W + 4n²Wd (W = 128, d = 32), 2 per block, 48 blocks.
    n, w, d = 1024, 128, 32
    assert pairformer("vanilla", n) == pairformer("gated", n)
    expected_gap = 48 * 2 * (4 * n**3 * w - (2 * n**3 * w + 4 * n**2 * w * d))
    assert pairformer("vanilla", n) - pairformer("additive", n) == pytest.approx(expected_gap, rel=1e-9)
    growth = pairformer("vanilla", 2 * n) / pairformer("vanilla", n)
    assert 6.0 < growth < 8.0  # tending to 8 as the cubic terms dominate


def test_miniaturize_keeps_ratios():
    base, large, deep = (miniaturize(get_preset(n)) for n in ("base", "large", "deep_pairformer"))
    assert large.c_z == 4 * base.c_z and large.c_m == 4 * base.c_m
    assert deep.n_pairformer_blocks == 2 * base.n_pairformer_blocks
    assert base.c_z // base.tri_att_head_dim * 4 == large.c_z // large.tri_att_head_dim
    assert count_parameters(base)["total"] < 2_000_000
