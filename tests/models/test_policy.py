"""The memory and precision policy: every stack honours it, and chunking/checkpointing change no value."""

from collections import Counter

import pytest
import torch

import models.policy
from models.losses import compute_losses
from models.model import SeedFold
from models.modules.msa_module import OuterProductMean
from models.policy import MemoryPolicy
from tests.models.conftest import tiny_config
from tests.models.test_model import _perturb


def _with_templates(batch: dict, n_templates: int = 2) -> dict:
    g = torch.Generator().manual_seed(3)
    b, n = batch["token_mask"].shape
    return batch | {
        "template_restype": torch.randint(0, 20, (b, n_templates, n), generator=g),
        "template_pseudo_beta": torch.randn(b, n_templates, n, 3, generator=g) * 8,
        "template_pseudo_beta_mask": batch["token_mask"][:, None].expand(-1, n_templates, -1).clone(),
    }


def _config(**policy):
    return tiny_config(use_templates=True, n_pairformer_blocks=2, n_msa_blocks=2, n_template_blocks=2,
                       n_diffusion_blocks=3, n_confidence_blocks=2, policy=MemoryPolicy(**policy))


def _loss_and_grads(model, batch):
    model.zero_grad()
    out = model(batch, n_cycles=1, diffusion_batch=4, generator=torch.Generator().manual_seed(0),
                with_confidence=True)
    loss = compute_losses(out, batch, confidence=True)["loss"]
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), out["x_denoised"].detach(), grads


def _count_checkpoints(monkeypatch) -> Counter:
    calls: Counter = Counter()
    real = models.policy.checkpoint

    def counting(fn, *args, **kwargs):
        owner = getattr(fn, "__self__", None) or getattr(fn, "__qualname__", None) or fn
        calls[owner if isinstance(owner, str) else type(owner).__name__] += 1
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(models.policy, "checkpoint", counting)
    return calls


def _same_step(reference, other, batch, monkeypatch) -> Counter:
    """One training step of each model from the same RNG state: the loss and denoised atoms equal to the bit,
    every gradient to 1e-5; returns the checkpoint calls of ``other``'s step."""
    torch.manual_seed(1)
    loss_a, x_a, grads_a = _loss_and_grads(reference, batch)
    calls = _count_checkpoints(monkeypatch)
    torch.manual_seed(1)
    loss_b, x_b, grads_b = _loss_and_grads(other, batch)
    assert torch.equal(loss_b, loss_a) and torch.equal(x_b, x_a)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 50
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-5, atol=1e-7, msg=name)
    return calls


def test_every_stack_checkpoints_each_block(tiny_batch, monkeypatch):
    batch = _with_templates(tiny_batch)
    torch.manual_seed(0)
    model = SeedFold(_config(checkpoint_blocks=True, opm_chunk_size=None)).train()
    calls = _count_checkpoints(monkeypatch)
    model(batch, n_cycles=1, diffusion_batch=2, generator=torch.Generator().manual_seed(0), with_confidence=True)
    assert calls["PairBlock"] == 2  # template pair stack
    assert calls["MSABlock"] == 2
    assert calls["PairformerBlock"] == 2 + 2  # trunk Pairformer + confidence head's Pairformer
    assert calls["DiffusionTransformer._block"] == 3  # the training call; the no-grad rollout saves nothing
    # The pair conditioning, once per training call: [z_trunk, relpos]'s projection and its two transitions.
    assert calls["DiffusionConditioning"] == 1 and calls["Transition"] == 2


def test_checkpointing_off_checkpoints_nothing(tiny_batch, monkeypatch):
    model = SeedFold(_config(checkpoint_blocks=False, opm_chunk_size=None)).train()
    calls = _count_checkpoints(monkeypatch)
    model(_with_templates(tiny_batch), n_cycles=1, diffusion_batch=2, generator=torch.Generator().manual_seed(0))
    assert sum(calls.values()) == 0


def test_checkpointing_and_chunking_change_no_value_or_gradient(tiny_batch):
    batch = _with_templates(tiny_batch)
    torch.manual_seed(0)
    plain = SeedFold(_config(opm_chunk_size=None)).train()
    _perturb(plain)
    memory = SeedFold(_config(checkpoint_blocks=True, opm_chunk_size=5, diffusion_chunk_size=3)).train()
    memory.load_state_dict(plain.state_dict())
    loss_a, x_a, grads_a = _loss_and_grads(plain, batch)
    loss_b, x_b, grads_b = _loss_and_grads(memory, batch)
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x_b, x_a, rtol=1e-5, atol=1e-5)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 50
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-4, atol=1e-6, msg=name)


def test_outer_product_mean_chunks_rows_without_the_full_outer_product():
    torch.manual_seed(0)
    b, s, n, c_m, c = 2, 5, 13, 8, 4
    full = OuterProductMean(c_m, 16, c).double()
    torch.nn.init.normal_(full.proj_out.weight)
    chunked = OuterProductMean(c_m, 16, c, chunk_size=4).double()
    chunked.load_state_dict(full.state_dict())
    m = torch.randn(b, s, n, c_m, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(b, s, n) > 0.2

    saved: list[int] = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = chunked(m, mask)
    # No tensor kept for backward is as large as the (B, N, N, c, c) outer product.
    assert max(saved) < b * n * n * c * c
    ref = full(m, mask)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    (g_chunk,) = torch.autograd.grad(out.square().sum(), m)
    (g_full,) = torch.autograd.grad(ref.square().sum(), m)
    torch.testing.assert_close(g_chunk, g_full, rtol=1e-12, atol=1e-12)


def _dtypes_of(model: SeedFold, batch, with_confidence: bool) -> dict[str, set]:
    seen: dict[str, set] = {"pairformer": set(), "msa_module": set(), "template": set(), "confidence": set(),
                            "diffusion": set()}
    stacks = {"pairformer": model.pairformer, "msa_module": model.msa_module,
              "template": model.template_embedder.stack, "confidence": model.confidence_head.pairformer,
              "diffusion": model.diffusion_module.transformer}
    for name, stack in stacks.items():
        for mod in stack.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.register_forward_hook(lambda _m, _i, out, name=name: seen[name].add(out.dtype))
    model(batch, n_cycles=1, diffusion_batch=2, generator=torch.Generator().manual_seed(0),
          with_confidence=with_confidence)
    return seen


def test_bf16_trunk_fp32_structure_module(tiny_batch):
    model = SeedFold(_config(trunk_precision="bf16"))
    seen = _dtypes_of(model, _with_templates(tiny_batch), with_confidence=True)
    assert seen["pairformer"] == seen["msa_module"] == seen["template"] == {torch.bfloat16}
    assert seen["diffusion"] == {torch.float32} and seen["confidence"] == {torch.float32}
    assert MemoryPolicy(trunk_precision="bf16").precision_by_module()["diffusion_module"] == "fp32"


def test_confidence_precision_is_its_own(tiny_batch):
    model = SeedFold(_config(confidence_precision="bf16"))
    seen = _dtypes_of(model, _with_templates(tiny_batch), with_confidence=True)
    assert seen["confidence"] == {torch.bfloat16} and seen["pairformer"] == {torch.float32}


def test_legacy_flat_switches_map_onto_the_policy():
    config = tiny_config(trunk_bf16=True, gradient_checkpointing=True)
    assert config.policy.trunk_precision == "bf16" and config.policy.checkpoint_blocks
    assert "trunk_bf16" not in config.model_dump()


@pytest.mark.gpu
def test_tf32_is_enabled_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    MemoryPolicy(tf32=True).apply_backend()
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_sublayer_checkpointing_changes_no_value_or_gradient(tiny_batch, monkeypatch):
    """checkpoint_sublayers recomputes each pair-block update (and single attention) on its own inside the
    block's recomputation; dropout masks are redrawn from the saved RNG state, so the loss, the denoised atoms and
    every gradient are those of block checkpointing alone."""
    from models.modules.pairformer import PairBlock

    batch = _with_templates(tiny_batch)
    torch.manual_seed(0)
    dropout = {"pair_dropout": 0.25}  # the masks are part of what must be reproduced
    blocks = SeedFold(_config(checkpoint_blocks=True, opm_chunk_size=None).model_copy(update=dropout)).train()
    _perturb(blocks)
    sublayers = SeedFold(_config(checkpoint_blocks=True, checkpoint_sublayers=True, opm_chunk_size=None)
                         .model_copy(update=dropout)).train()
    sublayers.load_state_dict(blocks.state_dict())
    calls = _same_step(blocks, sublayers, batch, monkeypatch)
    pair_blocks = sum(isinstance(m, PairBlock) for m in sublayers.modules())
    # Forward once, then again inside each block's recomputation in backward: four updates and the transition.
    assert calls["_dropped"] == 2 * 4 * pair_blocks
    assert calls["AttentionPairBias"] == 2 * 4  # trunk and confidence Pairformer blocks (2 each)


def test_sublayer_checkpointing_needs_block_checkpointing():
    """Without checkpoint_blocks the option does nothing (a sub-layer's saved inputs alone would outgrow a block's)."""
    from models.modules.pairformer import PairBlock

    model = SeedFold(_config(checkpoint_blocks=False, checkpoint_sublayers=True))
    assert not any(m.sublayer_checkpointing for m in model.modules() if isinstance(m, PairBlock))


@pytest.mark.parametrize("group", [2, 3])
def test_grouped_checkpointing_changes_no_value_or_gradient(tiny_batch, monkeypatch, group):
    """checkpoint_group checkpoints the trunk Pairformer's blocks in groups too (two levels, nested): the loss,
    the denoised atoms and every gradient are those of per-block checkpointing, dropout included; backward
    recomputes each group once (its blocks' checkpoints inside it run again) and each block once more. A group
    may be shorter than the others (5 blocks in groups of 2 or 3)."""
    batch = _with_templates(tiny_batch)
    torch.manual_seed(0)
    config = _config(checkpoint_blocks=True, checkpoint_sublayers=True, opm_chunk_size=None).model_copy(
        update={"pair_dropout": 0.25, "n_pairformer_blocks": 5})
    blocks = SeedFold(config).train()
    _perturb(blocks)
    grouped = SeedFold(config.model_copy(update={"policy": config.policy.model_copy(
        update={"checkpoint_group": group})})).train()
    grouped.load_state_dict(blocks.state_dict())
    assert grouped.pairformer.group == group and grouped.confidence_head.pairformer.group == 1
    calls = _same_step(blocks, grouped, batch, monkeypatch)
    groups = -(-5 // group)
    assert calls["_blocks"] == groups
    # Trunk blocks: forward inside the groups, again in each group's recomputation; confidence head: 2 blocks once.
    assert calls["PairformerBlock"] == 2 * 5 + 2


def test_grouped_checkpointing_needs_block_checkpointing():
    model = SeedFold(_config(checkpoint_blocks=False, checkpoint_group=2))
    assert model.pairformer.group == 1
    with pytest.raises(ValueError, match="checkpoint_group"):
        MemoryPolicy(checkpoint_group=0)
