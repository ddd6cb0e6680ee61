"""The confidence head's pair readout (``ModelConfig.confidence_pair_readout``): what it changes and what not.

AF3's head reads pLDDT from the single representation, which learns about the sample only through the
Pairformer's pair-biased single attention; that attention's output projection starts at zero (AF3 init), so a
fresh AF3 head's pLDDT does not depend on the sample at all, and a CPU miniature's never learns to (BENCHMARKS.md).
The readout gives the pair track, where the sample's distances are embedded, a direct route to pLDDT."""

import pytest
import torch

from models.accounting import count_parameters
from models.modules.confidence import ConfidenceHead
from tests.models.conftest import collate, random_example, tiny_config


def _readout_head(n_tokens: int):
    """A fresh head with the readout (eval mode, seed 0) and inputs for it."""
    config = tiny_config(confidence_pair_readout=True)
    torch.manual_seed(0)
    return ConfidenceHead(config).eval(), _inputs(config, n_tokens=n_tokens)


def _inputs(config, n_tokens: int = 10, seed: int = 0):
    batch = collate([random_example(n_tokens, seed=seed)])
    g = torch.Generator().manual_seed(seed)
    s_inputs = torch.randn(1, n_tokens, config.s_inputs_dim, generator=g)
    s = torch.randn(1, n_tokens, config.c_s, generator=g)
    z = torch.randn(1, n_tokens, n_tokens, config.c_z, generator=g)
    truth = batch["gt_coords"][:, None]
    # two samples: the truth, and the truth with half of the chain displaced by 6 Å
    moved = truth.clone()
    moved[:, :, batch["atom_to_token"][0] >= n_tokens // 2] += torch.tensor([6.0, 0.0, 0.0])
    return batch, s_inputs, s, z, torch.cat([truth, moved], dim=1)


@torch.no_grad()
def test_af3_head_at_init_ignores_the_sample_and_the_readout_does_not():
    batch, s_inputs, s, z, x = _inputs(tiny_config())
    for readout in (False, True):
        torch.manual_seed(0)
        head = ConfidenceHead(tiny_config(confidence_pair_readout=readout)).eval()
        out = head(batch, s_inputs, s, z, x)
        plddt_moves = (out["plddt_logits"][:, 0] - out["plddt_logits"][:, 1]).abs().max()
        pae_moves = (out["pae_logits"][:, 0] - out["pae_logits"][:, 1]).abs().max()
        assert float(pae_moves) > 1e-2  # the pair track sees the sample either way
        if readout:
            assert float(plddt_moves) > 1e-2
        else:
            assert float(plddt_moves) == 0.0  # zero-initialised attention output: s never sees z at init


@torch.no_grad()
def test_readout_pools_real_tokens_only():
    head, (batch, s_inputs, s, z, x) = _readout_head(12)
    real = torch.arange(12) < 9
    batch["token_mask"] = real[None]
    ref = head(batch, s_inputs, s, z, x)
    # anything about the padding tokens: their pair rows and columns, their coordinates
    z2, x2 = z.clone(), x.clone()
    z2[:, ~real] += 3.0
    z2[:, :, ~real] -= 2.0
    x2[:, :, batch["atom_to_token"][0] >= 9] += 40.0
    out = head(batch, s_inputs, s, z2, x2)
    real_atoms = batch["atom_to_token"][0] < 9
    torch.testing.assert_close(out["plddt_logits"][:, :, real_atoms], ref["plddt_logits"][:, :, real_atoms])


def test_readout_gets_gradient_from_the_plddt_loss_at_init():
    config = tiny_config(confidence_pair_readout=True)
    batch, s_inputs, s, z, x = _inputs(config)
    torch.manual_seed(0)
    head = ConfidenceHead(config)
    head(batch, s_inputs, s, z, x)["plddt_logits"].logsumexp(-1).sum().backward()
    assert float(head.proj_readout.weight.grad.abs().max()) > 0
    # ... while AF3's route from the pair track to s, the attention's pair bias, gets none at init
    assert float(head.pairformer.blocks[0].attention.proj_z.weight.grad.abs().max()) == 0.0


@pytest.mark.parametrize("readout", [False, True])
def test_parameters_counted(readout):
    config = tiny_config(confidence_pair_readout=readout)
    head = ConfidenceHead(config)
    extra = (2 * config.c_z + config.c_z * config.c_s) if readout else 0
    without = count_parameters(tiny_config())["confidence_head"]
    assert count_parameters(config)["confidence_head"] == without + extra == sum(p.numel() for p in head.parameters())


@torch.no_grad()
def test_readout_chunked_by_rows_changes_no_value():
    head, (batch, s_inputs, s, z, x) = _readout_head(11)
    whole = head(batch, s_inputs, s, z, x)["plddt_logits"]
    head.chunk_size = 3  # what SeedFold.set_chunk_size sets on every module that chunks
    torch.testing.assert_close(head(batch, s_inputs, s, z, x)["plddt_logits"], whole, rtol=0, atol=1e-5)


def test_readout_without_a_confidence_head_is_rejected():
    from harness.config import RunConfig
    from harness.config_files import parse_config
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="confidence_pair_readout needs use_confidence_head"):
        parse_config(RunConfig, {"model": {"preset": "base", "miniature": True, "use_confidence_head": False,
                                           "confidence_pair_readout": True}}, "run.yaml")
