"""Initialisation statistics per layer kind under AF3's scheme and PyTorch's (``ModelConfig.init``)."""

import math

import pytest
import torch
from torch import nn

from models.model import SeedFold
from tests.models.conftest import tiny_config


def _linears(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}


@pytest.fixture(scope="module")
def af3_model():
    torch.manual_seed(0)
    return SeedFold(tiny_config(c_s=64, c_z=32, c_token=64, c_atom=32, n_msa_blocks=2))


def test_every_linear_has_a_kind(af3_model):
    kinds = {getattr(m, "init_kind", None) for m in _linears(af3_model).values()}
    assert kinds == {"lecun", "final", "gating", "adaptive_zero"}


def test_lecun_layers_have_variance_one_over_fan_in(af3_model):
    # pooled over all LeCun layers, w·sqrt(fan_in) is a unit-variance truncated-then-rescaled normal
    z = torch.cat([
        m.weight.detach().flatten() * math.sqrt(m.weight.shape[1])
        for m in _linears(af3_model).values()
        if m.init_kind == "lecun" and getattr(m, "gate_from", None) is None
    ])  # fmt: skip
    n = z.numel()
    assert n > 20_000
    # var of a sample of n: standard error sqrt(2/n) for a normal; 5 SE band
    assert abs(float(z.var()) - 1.0) < 5 * math.sqrt(2.0 / n) * 1.2
    assert float(z.mean()).__abs__() < 5 / math.sqrt(n)
    assert float(z.abs().max()) <= 2.0 / 0.87962566103423978 + 1e-5  # truncated at 2σ of the base normal


def test_final_projections_and_gates(af3_model):
    layers = _linears(af3_model)
    finals = [m for m in layers.values() if m.init_kind == "final"]
    gates = [m for m in layers.values() if m.init_kind == "gating"]
    assert len(finals) >= 10 and len(gates) >= 5
    assert all(bool((m.weight == 0).all()) and (m.bias is None or bool((m.bias == 0).all())) for m in finals)
    assert all(bool((m.weight == 0).all()) and (m.bias is None or bool((m.bias == 1).all())) for m in gates)
    kind = {n: m.init_kind for n, m in layers.items()}
    block = "pairformer.blocks.0."
    for name in ("pair.tri_mul_out.proj_out", "pair.tri_att_start.proj_out", "pair.transition.proj_out",
                 "attention.proj_out", "transition.proj_out"):  # fmt: skip
        assert kind[block + name] == "final", name
    for name in ("pair.tri_mul_out.gate_a", "pair.tri_mul_out.gate_out", "pair.tri_att_end.proj_gate",
                 "attention.proj_gate"):  # fmt: skip
        assert kind[block + name] == "gating", name
    assert kind[block + "pair.tri_att_start.proj_qkv"] == kind[block + "attention.proj_kv"] == "lecun"
    # explicit AF3 biases survive: the diffusion output gates start at -2
    gated = [m for n, m in layers.items() if n.endswith("gate_out") and m.bias is not None]
    assert gated and all(bool((m.bias == -2.0).all()) for m in gated)
    # PairWeightedAveraging's fused value/gate projection: the gate half is zero, the value half is not
    vg = next(m for m in layers.values() if getattr(m, "gate_from", None) is not None)
    assert bool((vg.weight[vg.gate_from :] == 0).all()) and float(vg.weight[: vg.gate_from].abs().sum()) > 0


def test_torch_default_scheme_is_pytorchs_kaiming_uniform():
    torch.manual_seed(0)
    model = SeedFold(tiny_config(c_s=64, c_z=32, c_token=64, c_atom=32, init="torch_default"))
    layers = _linears(model).values()
    # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance 1/(3 fan_in); nothing zero-initialised
    z = torch.cat([m.weight.detach().flatten() * math.sqrt(m.weight.shape[1]) for m in layers])
    assert abs(float(z.var()) - 1.0 / 3.0) < 0.02
    assert float(z.abs().max()) <= 1.0 + 1e-6
    assert not any(bool((m.weight == 0).all()) for m in layers)


def test_the_scheme_is_a_config_key_shown_with_the_run():
    from harness.config import RunConfig, parse_config

    cfg = parse_config(RunConfig, {"name": "x", "model": {"preset": "base", "miniature": True}}, "<t>")
    assert cfg.model.init == "af3" and cfg.model.architecture().init == "af3"
    with pytest.raises(Exception, match="model.init"):
        parse_config(RunConfig, {"name": "x", "model": {"preset": "base", "init": "xavier"}}, "<t>")


ZERO_CONDITIONING = ("diffusion_module.transformer.attention.0.norm_a.scale",
                     "diffusion_module.transformer.attention.0.norm_a.shift",
                     "diffusion_module.transformer.attention.0.gate_out",
                     "diffusion_module.transformer.transition.0.ada_ln.scale",
                     "diffusion_module.transformer.transition.0.gate",
                     "diffusion_module.atom_encoder.transformer.transition.0.gate",
                     "diffusion_module.atom_decoder.transformer.attention.0.gate_out",
                     "diffusion_module.atom_encoder.proj_s", "diffusion_module.atom_encoder.proj_z")


def test_conditioning_layers_start_at_zero_as_in_af3s_code(af3_model):
    """AdaLN-Zero (AF3's released code): AdaLN's scale and shift, the conditioned output gates (bias -2) and the
    trunk -> atom projections start at zero, so every conditioned block starts at σ(0) = 0.5 scale, no shift,
    and a σ(-2) output gate whatever the condition."""
    layers = _linears(af3_model)
    for name in ZERO_CONDITIONING:
        layer = layers[name]
        assert layer.init_kind == "adaptive_zero" and bool((layer.weight == 0).all()), name
        expected_bias = -2.0 if name.endswith(("gate_out", ".gate")) else 0.0
        assert layer.bias is None or bool((layer.bias == expected_bias).all()), name
    assert {n for n, m in layers.items() if m.init_kind == "adaptive_zero"} >= set(ZERO_CONDITIONING)


def test_runs_recorded_before_zero_conditioning_keep_lecun_there():
    torch.manual_seed(0)
    legacy = _linears(SeedFold(tiny_config(c_s=64, c_z=32, c_token=64, c_atom=32, zero_init_conditioning=False)))
    for name in ZERO_CONDITIONING:
        w = legacy[name].weight
        assert 0.5 < float(w.std() * math.sqrt(w.shape[1])) < 1.5, name  # LeCun (unit variance x fan_in), not 0
    assert bool((legacy["diffusion_module.transformer.transition.0.gate"].bias == -2.0).all())
