"""The fake-tensor trace of a training step (models.memory) against a real CPU step of the same model."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from models import losses
from models.memory import (
    CATEGORIES,
    PREDICT_DEPTH_FIELDS,
    PredictShape,
    StepMemory,
    StepShape,
    synthetic_batch,
    trace_full_depth,
    trace_predict_full_depth,
    trace_step,
)
from models.model import SeedFold
from models.presets import get_preset, miniaturize


def _real_step_peak(arch, shape: StepShape) -> int:
    """Peak bytes held by the CPU allocator over one real training step in the traced steady state (Adam moments,
    accumulated gradients and an EMA copy alive): what lives before the step plus the highest running sum of the
    profiler's allocation and free events during it."""
    torch.manual_seed(0)
    model = SeedFold(arch).train()
    model.confidence_head.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    shadow = [p.detach().clone().float() for p in params]
    batch = synthetic_batch(shape)
    alive = [*model.parameters(), *model.buffers(), *(p.grad for p in params), *shadow, *batch.values(),
             *(v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v))]

    def step():
        out = model(batch, n_cycles=1, diffusion_batch=shape.diffusion_batch)
        loss = losses.compute_losses(out, batch)["loss"]
        loss.backward()
        del out, loss
        optimizer.step()

    with mock.patch.object(losses, "bond_loss", lambda x, *a, **k: x.new_zeros(())):
        return _real_peak(step, alive)


def _real_peak(run, alive: list[torch.Tensor]) -> int:
    """Bytes of the ``alive`` tensors' storages plus the highest running sum of the profiler's allocation and free
    events while ``run()`` runs: the CPU allocator's peak."""
    before = sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in alive}.values())
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return before + peak


def test_trace_matches_a_real_cpu_step_within_ten_percent():
    """The miniature base model at crop 48 (480 atoms, 8 copies): the trace and the real CPU step agree (measured
    148.78 MB traced vs 148.80 MB real)."""
    arch = miniaturize(get_preset("base"))
    shape = StepShape(n_tokens=48, n_atoms=480, n_msa=8, diffusion_batch=8)
    traced = trace_full_depth(arch, shape, gpu=False)
    real = _real_step_peak(arch, shape)
    assert abs(traced.peak_bytes - real) <= 0.10 * real, (traced.peak_bytes, real)
    assert traced.peak_bytes == sum(traced.by_category.values())
    model = SeedFold(arch)
    trainable = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.confidence_head.parameters())
    n_tensors = len(list(model.parameters()))
    c = traced.by_category
    assert set(c) == set(CATEGORIES)
    # Adam's two fp32 moments (+ step counters) and the fp32 EMA copy of every trainable parameter (the head is
    # frozen without the confidence loss), each storage rounded up to 512 bytes.
    assert 8 * trainable <= c["optimizer"] <= 8 * trainable + 3 * 512 * n_tensors
    assert 4 * trainable <= c["other"] <= 4 * trainable + 512 * n_tensors


@pytest.mark.parametrize("chunk", [None, 16])
def test_predict_trace_matches_a_real_cpu_prediction_within_ten_percent(chunk):
    """``SeedFold.sample`` of the miniature base model (64 tokens, 500 atoms, 5 samples, pair operations whole or
    in 16-row chunks): the trace and the real CPU call agree within 10 %; the weights are all that lives before."""
    arch = miniaturize(get_preset("base"))
    shape = PredictShape(n_tokens=64, n_atoms=500, n_msa=8, n_samples=5, n_steps=3, chunk_size=chunk)
    traced = trace_predict_full_depth(arch, shape, gpu=False)
    torch.manual_seed(0)
    model = SeedFold(arch).eval()
    model.set_chunk_size(chunk)
    batch = synthetic_batch(StepShape(shape.n_tokens, shape.n_atoms, shape.n_msa, diffusion_batch=1))

    def sample():
        with torch.no_grad():
            del model.sample(batch, n_cycles=1, n_samples=shape.n_samples, n_steps=shape.n_steps)["coords"]

    real = _real_peak(sample, [*model.parameters(), *model.buffers(), *batch.values()])
    assert abs(traced.peak_bytes - real) <= 0.10 * real, (traced.peak_bytes, real)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    assert weights <= traced.by_category["parameters"] <= weights + 512 * len(list(model.parameters()))
    assert traced.by_category["gradients"] == traced.by_category["optimizer"] == 0


def test_predict_depth_extrapolation_equals_the_full_depth_trace():
    """Without autograd the extra blocks add their weights only: 1- and 2-block traces extrapolated to 3 + 3 + 3
    blocks (Pairformer, diffusion transformer, confidence head) give the full-depth trace's peak."""
    arch = miniaturize(get_preset("base")).model_copy(update={"n_pairformer_blocks": 3, "n_diffusion_blocks": 3,
                                                              "n_confidence_blocks": 3})
    shape = PredictShape(n_tokens=32, n_atoms=256, n_msa=4, n_samples=2, n_steps=2)
    full = trace_predict_full_depth(arch, shape)
    extrapolated = trace_step(arch, shape, trace=trace_predict_full_depth, fields=PREDICT_DEPTH_FIELDS)
    assert extrapolated.traces == 4
    assert abs(extrapolated.peak_bytes - full.peak_bytes) <= 0.01 * full.peak_bytes, (full, extrapolated)


@pytest.mark.slow
def test_depth_extrapolation_equals_the_full_depth_trace():
    """trace_step traces 1 and 2 blocks per stack (or groups of blocks) and extrapolates; at 3 Pairformer and 3
    diffusion blocks it gives the full trace's bytes, per category, with and without per-block checkpointing, and
    at 6 Pairformer blocks checkpointed in groups of 2 (traced at 2 and 4) with sub-layer checkpointing; each
    phase's peak too."""
    for checkpoint, group, depth in ((True, 1, 3), (False, 1, 3), (True, 2, 6)):
        policy = miniaturize(get_preset("base")).policy.model_copy(update={
            "checkpoint_blocks": checkpoint, "checkpoint_group": group, "checkpoint_sublayers": group > 1})
        arch = miniaturize(get_preset("base")).model_copy(update={
            "n_pairformer_blocks": depth, "n_diffusion_blocks": 3, "policy": policy})
        shape = StepShape(n_tokens=32, n_atoms=256, n_msa=4, diffusion_batch=4)
        full, extrapolated = trace_full_depth(arch, shape), trace_step(arch, shape)
        assert extrapolated.traces == 3
        assert abs(extrapolated.peak_bytes - full.peak_bytes) <= 0.01 * full.peak_bytes, (checkpoint, full,
                                                                                          extrapolated)
        for phase, (bytes_, _) in full.phases.items():
            assert abs(extrapolated.phases[phase][0] - bytes_) <= 0.01 * bytes_, (checkpoint, group, phase)


def test_depth_extrapolation_follows_whichever_phase_peaks_at_full_depth():
    """At 1 and 2 blocks the step peaks in a phase that grows by a block's weights (+0.23 GB a block), while the
    forward phase and the Pairformer's backward, holding every block's input, grow by 1.07 GB a block: at 48
    Pairformer blocks the largest of those is the answer, with its own categories."""
    def trace(arch, shape):
        d = arch.n_pairformer_blocks
        rest = int((59.0 + 0.23 * (d - 1)) * 1e9)
        forward = int((44.0 + 1.07 * (d - 1)) * 1e9)
        pairformer = int((45.0 + 1.07 * (d - 1)) * 1e9)
        none = dict.fromkeys(CATEGORIES, 0)
        phases = {"forward": (forward, none | {"activations": forward}), "backward": (int(30e9), none),
                  "pairformer backward": (pairformer, none | {"temporaries": pairformer}),
                  "rest": (rest, none | {"optimizer": rest})}
        return StepMemory(rest, none | {"optimizer": rest}, phases=phases)

    arch = miniaturize(get_preset("base")).model_copy(update={"n_pairformer_blocks": 48, "n_diffusion_blocks": 1})
    memory = trace_step(arch, StepShape(n_tokens=32, n_atoms=256, n_msa=4, diffusion_batch=4), trace=trace)
    assert memory.peak_bytes == int(45.0e9) + 47 * (int(46.07e9) - int(45.0e9))
    assert memory.by_category["temporaries"] == memory.peak_bytes and memory.by_category["optimizer"] == 0
    assert memory.forward_bytes == int(44.0e9) + 47 * (int(45.07e9) - int(44.0e9))
    shallow = trace_step(arch.model_copy(update={"n_pairformer_blocks": 3}), StepShape(32, 256, 4, 4), trace=trace)
    assert shallow.peak_bytes == int(59.0e9) + 2 * (int(59.23e9) - int(59.0e9))  # the last phase still peaks


def test_grouped_checkpointing_extrapolates_by_groups(monkeypatch):
    """With the trunk Pairformer checkpointed in groups of g blocks, trace_step traces g and 2g blocks and
    extrapolates by groups (a depth that is not a multiple counts its last group whole)."""
    depths = []

    def trace(arch, shape):
        depths.append(arch.n_pairformer_blocks)
        return StepMemory(int(arch.n_pairformer_blocks * 1e9), dict.fromkeys(CATEGORIES, 0))

    base = miniaturize(get_preset("base"))
    policy = base.policy.model_copy(update={"checkpoint_blocks": True, "checkpoint_group": 6})
    arch = base.model_copy(update={"n_pairformer_blocks": 48, "n_diffusion_blocks": 1, "policy": policy})
    assert trace_step(arch, StepShape(32, 256, 4, 4), trace=trace).peak_bytes == int(48e9) and depths == [6, 12]
    odd = arch.model_copy(update={"n_pairformer_blocks": 50})
    assert trace_step(odd, StepShape(32, 256, 4, 4), trace=trace).peak_bytes == int(54e9)  # 9 groups of 6
