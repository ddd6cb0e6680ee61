"""Parameter initialisation: AlphaFold3's scheme by default, PyTorch's as the alternative (``ModelConfig.init``).

AF3 (like AF2, Boltz and Protenix) draws every non-final linear layer from a LeCun normal (truncated at ±2σ and
rescaled so the variance is 1/fan_in), starts sigmoid gates closed-to-neutral (weights 0, bias 1 where the gate
has a bias) and zeroes the last projection of every residual branch, so each block starts as the identity. Its
conditioning layers start at zero too ("adaptive_zero", AdaLN-Zero in its released code): AdaLN's scale and shift
projections (σ(0) = 0.5 and no shift whatever the condition), the conditioned output gates of the diffusion and
atom transformers (weights 0, bias -2: σ(-2) ≈ 0.12) and the projections of the trunk's single and pair into the
atom encoder. Runs recorded before this project zeroed them used LeCun there (``zero_conditioning=False``,
``ModelConfig.zero_init_conditioning``). This
matters for the width study: the paper's instability above width 256 is a property of the init as much as of
the width. Each layer built by ``models.modules.primitives.linear`` records its kind (``init_kind``); the model
applies the configured scheme once, after construction (:func:`apply_init`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

InitScheme = Literal["af3", "torch_default"]
InitKind = Literal["lecun", "final", "gating", "adaptive_zero"]
INIT_KINDS: tuple[str, ...] = ("lecun", "final", "gating", "adaptive_zero")
TRUNCATED_NORMAL_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


@torch.no_grad()
def lecun_normal_(layer: nn.Linear) -> None:
    """Weights ~ truncated N(0, 1/fan_in) on [-2σ, 2σ] (variance 1/fan_in after truncation); bias 0."""
    fan_in = layer.weight.shape[1]
    std = math.sqrt(1.0 / fan_in) / TRUNCATED_NORMAL_STD
    nn.init.trunc_normal_(layer.weight, std=std, a=-2.0 * std, b=2.0 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@torch.no_grad()
def final_(layer: nn.Linear) -> None:
    """The last projection of a residual branch: weights and bias 0, so the branch starts at zero."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@torch.no_grad()
def gating_(layer: nn.Linear, rows: slice = slice(None)) -> None:
    """A sigmoid gate (its output ``rows``): weights 0 and bias 1, so the gate opens at σ(1) ≈ 0.73 (σ(0) = 0.5
    for a gate without bias) whatever the input."""
    layer.weight[rows] = 0.0
    if layer.bias is not None:
        layer.bias[rows] = 1.0


@torch.no_grad()
def init_linear(layer: nn.Linear, scheme: InitScheme = "af3", *, zero_conditioning: bool = True) -> None:
    """(Re-)initialise one layer by its recorded kind under ``scheme``. Explicit bias values (AF3's -2 on the
    diffusion output gates, ``layer.bias_init``) are part of the architecture and hold under both schemes.
    ``zero_conditioning``: the "adaptive_zero" kind starts at zero (AF3) rather than LeCun normal."""
    if scheme == "torch_default":
        layer.reset_parameters()
    elif scheme == "af3":
        kind = getattr(layer, "init_kind", "lecun")
        if kind == "final" or (kind == "adaptive_zero" and zero_conditioning):
            final_(layer)
        elif kind == "gating":
            gating_(layer)
        else:
            lecun_normal_(layer)
            gate_from = getattr(layer, "gate_from", None)
            if gate_from is not None:  # a fused value+gate projection: only the gate rows are gates
                gating_(layer, slice(gate_from, None))
    else:
        raise ValueError(f"init scheme {scheme!r}; expected one of af3, torch_default")
    bias_init = getattr(layer, "bias_init", None)
    if bias_init is not None and layer.bias is not None:
        nn.init.constant_(layer.bias, bias_init)


def apply_init(model: nn.Module, scheme: InitScheme, *, zero_conditioning: bool = True) -> None:
    """Initialise every ``nn.Linear`` of ``model`` under ``scheme`` (LayerNorms keep PyTorch's 1 / 0)."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            init_linear(module, scheme, zero_conditioning=zero_conditioning)
