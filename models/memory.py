"""Peak memory of one training step, traced under fake tensors: no memory is allocated and no GPU is needed.

``trace_step`` builds the real ``SeedFold`` on the meta device, gives it fake storage (``FakeTensorMode``) and
runs one micro-batch the way training does in steady state: Adam's moments and the gradients accumulated by
earlier micro-batches alive, an fp32 EMA copy of the weights, then forward (one recycling cycle with gradients;
earlier cycles run without autograd and hold less), the losses, backward and the Adam step. torch's
``MemTracker`` follows every storage by category (parameters, gradients, optimizer state, activations, backward
temporaries, other = the EMA copy) and records the peak; byte counts per dtype are those of the device, rounded
up to the CUDA caching allocator's 512-byte blocks (fragmentation and the CUDA context are not included).

The step traced is a GPU's (``gpu=True``, the default) without one being there: CUDA autocast's op lists apply
(a bf16 trunk keeps LayerNorm and softmax outputs in fp32, as on a GPU, unlike CPU autocast), Adam takes its
multi-tensor (foreach) path as on a GPU, and triangle attention runs through the Triton kernels' custom ops
(``models.kernels.ops``: their fake implementations give the kernels' outputs and saved tensors, no (H, J, J)
logits) unless ``kernel_impl: torch``. ``gpu=False`` traces the CPU step (what the real-step test compares with).

Data-dependent parts: the input is a synthetic batch of the given sizes (every token and atom real, no covalent
bonds), so the bond loss is zero there, as the real code returns for a crop without bonds; it is traced as such
(its memory is O(bonds)). The smooth lDDT runs in its blocked form (static shapes) as it does under autograd.

Tracing a paper-size model op by op takes minutes, and every Pairformer (or diffusion-transformer) block of a
stack is the same computation on the same shapes, so ``trace_step`` traces the model at 1 and 2 blocks of each
of those stacks and extrapolates linearly to the real depth, per category (exact when each block adds the same
saved tensors; tests/models/test_memory.py compares it with a full-depth trace).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass, field
from unittest import mock

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map_only

from models.config import ModelConfig
from models.features import FEATURES

CATEGORIES = ("parameters", "buffers", "gradients", "optimizer", "activations", "temporaries", "other")
_MEMTRACKER_NAMES = {"Parameter": "parameters", "Buffer": "buffers", "Gradient": "gradients",
                     "Optstate": "optimizer", "Activation": "activations", "Temp": "temporaries", "Other": "other"}
# The stacks whose depth is extrapolated: (config field, depths traced).
DEPTH_FIELDS = ("n_pairformer_blocks", "n_diffusion_blocks")
# A prediction's too: without autograd the confidence head's Pairformer blocks add their weights only as well (in
# a training step they stay traced whole: the head trains on detached inputs, its blocks' inputs are kept).
PREDICT_DEPTH_FIELDS = (*DEPTH_FIELDS, "n_confidence_blocks")
# The phases of a training step whose peaks are traced apart: the forward pass and losses; backward until the
# trunk Pairformer's backward starts (losses, heads, diffusion module); the Pairformer's backward (its blocks'
# inputs alive, one block recomputed); the rest (the trunk's earlier stacks, the Adam step and the EMA update).
PHASES = ("forward", "backward", "pairformer backward", "rest")


@dataclass(frozen=True)
class StepMemory:
    """Peak bytes of one training step on one device, and what was alive at that peak by category."""

    peak_bytes: int
    by_category: dict[str, int] = field(default_factory=dict)
    traces: int = 1  # fake-tensor traces it took
    seconds: float = 0.0  # CPU seconds spent tracing
    # The peak of each phase of the step (``PHASES``) and what was alive then, which depth extrapolation follows
    # phase by phase (``trace_step``); None for a prediction.
    phases: dict[str, tuple[int, dict[str, int]]] | None = None

    @property
    def peak_gb(self) -> float:
        return self.peak_bytes / 1e9

    @property
    def forward_bytes(self) -> int | None:
        """The forward phase's peak (forward and losses: every checkpointed block's input alive)."""
        return None if self.phases is None else self.phases["forward"][0]


@dataclass(frozen=True)
class StepShape:
    """What one micro-batch holds: B examples of N tokens, A atoms, S MSA rows, D noised copies each."""

    n_tokens: int
    n_atoms: int
    n_msa: int
    diffusion_batch: int
    batch_size: int = 1
    confidence: bool = False  # the detached confidence rollout and head (train.confidence_loss)


def synthetic_batch(shape: StepShape) -> dict[str, Tensor]:
    """A valid batch of exactly ``shape``'s sizes: every token and atom real, ~A/N atoms per token, a helix-like
    trace of coordinates, no bonds; values matter only where shapes depend on them (none do)."""
    b, n, a, s = shape.batch_size, shape.n_tokens, shape.n_atoms, shape.n_msa
    sizes = {"N": n, "A": a, "S": s}
    out = {}
    for name, spec in FEATURES.items():
        dims = [b] + [sizes[sym] if sym in sizes else int(sym) for sym in spec.shape]
        out[name] = torch.zeros(dims, dtype=spec.dtype)
    for name in ("token_mask", "atom_mask", "gt_atom_mask", "msa_mask", "is_protein"):
        out[name][:] = True
    token = torch.div(torch.arange(a) * n, a, rounding_mode="floor")  # atoms spread evenly over tokens
    out["atom_to_token"][:] = token
    out["ref_space_uid"][:] = token
    first = torch.searchsorted(token, torch.arange(n))
    out["token_center_atom"][:] = first
    out["token_disto_atom"][:] = first
    out["token_index"][:] = torch.arange(n)
    out["residue_index"][:] = torch.arange(n)
    out["asym_id"][:] = 1
    out["entity_id"][:] = 1
    t = torch.arange(a, dtype=torch.float32)
    out["gt_coords"][:] = torch.stack([2.3 * torch.cos(0.6 * t), 2.3 * torch.sin(0.6 * t), 0.5 * t], -1)
    return out


def _zero_bond_loss(x_pred: Tensor, x_true: Tensor, batch: dict, **options) -> Tensor:
    """``models.losses.bond_loss`` on a crop without bonds (its keyword options change nothing then)."""
    return x_pred.new_zeros(())


class _PeakTracker:
    """``MemTracker`` keeping only the device-wide peak: its per-module peaks cost a pass over every module for
    every operator (minutes at 48 blocks), and nothing here reads them."""

    def __new__(cls):
        from torch.distributed._tools.mem_tracker import _TOTAL_KEY, MemTracker

        class PeakOnly(MemTracker):
            def _update_peak_stats(self, peak_state) -> None:
                for dev, snap in self._curr_mem_snap.items():
                    if self._peak_mem.get(dev, 0) < snap[_TOTAL_KEY]:
                        self._peak_mem[dev] = snap[_TOTAL_KEY]
                        self._peak_mem_snap[dev] = dict(snap)

            def restart_peak(self) -> None:
                """Start a new phase: its peak is what is alive now, until more is."""
                for dev, snap in self._curr_mem_snap.items():
                    self._peak_mem[dev] = snap[_TOTAL_KEY]
                    self._peak_mem_snap[dev] = dict(snap)

        return PeakOnly()


class _NoHook:
    def remove(self) -> None:
        pass


def _skip_frozen(tracker, model: torch.nn.Module) -> None:
    """MemTracker hooks every parameter it sees for its gradient, which fails on frozen ones (no gradient by
    design); mark those as hooked already."""
    for p in model.parameters():
        if not p.requires_grad:
            tracker._param_to_grad_hook_handles[p] = (_NoHook(), _NoHook())


# CUDA autocast's "float32" list (torch.amp docs, "CUDA Ops that can autocast to float32"), by function name as
# torch-function handlers see it (``torch.sum`` and ``Tensor.sum`` alike). CPU autocast's list lacks most of them
# (LayerNorm, softmax, exp, sum, ...): there they return bf16 where a GPU returns fp32.
_CUDA_FP32_OPS = frozenset({
    "__pow__", "__rdiv__", "__rpow__", "__rtruediv__", "acos", "asin", "binary_cross_entropy_with_logits", "cosh",
    "cosine_embedding_loss", "cdist", "cosine_similarity", "cross_entropy", "cumprod", "cumsum", "dist", "erfinv",
    "exp", "expm1", "group_norm", "hinge_embedding_loss", "kl_div", "l1_loss", "layer_norm", "log", "log_softmax",
    "log10", "log1p", "log2", "margin_ranking_loss", "mse_loss", "multilabel_margin_loss", "multi_margin_loss",
    "nll_loss", "norm", "normalize", "pdist", "poisson_nll_loss", "pow", "prod", "reciprocal", "rsqrt", "sinh",
    "smooth_l1_loss", "soft_margin_loss", "softmax", "softmin", "softplus", "sum", "renorm", "tan",
    "triplet_margin_loss", "huber_loss", "logsumexp", "vector_norm",
})


class _CudaAutocastLists(TorchFunctionMode):
    """Inside CPU autocast, the ops CUDA autocast runs in fp32 get fp32 inputs and run without autocast, as the
    CUDA autocast kernel does: a bf16 trunk's fake CPU step then holds the dtypes a GPU step holds (fake CUDA
    tensors cannot be indexed in a CPU build of torch, so the trace keeps CPU tensors and CUDA's rules)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) not in _CUDA_FP32_OPS or not torch.is_autocast_enabled("cpu"):
            return func(*args, **kwargs)
        args, kwargs = tree_map_only(
            Tensor, lambda t: t.float() if t.dtype in (torch.bfloat16, torch.float16) else t, (args, kwargs))
        with torch.autocast("cpu", enabled=False):
            return func(*args, **kwargs)


@contextlib.contextmanager
def _as_on_a_gpu(arch: ModelConfig):
    """What a training step does differently on a GPU: CUDA autocast's op lists, and triangle attention through
    the Triton kernels when ``kernel_impl`` is not ``torch`` (the ``auto`` choice on a GPU where their self-check
    passes; the fake implementations of their custom ops stand in for them: outputs and saved tensors of the
    kernels, no (H, J, J) logits)."""
    from torch.utils.checkpoint import checkpoint

    def recompute_as_on_a_gpu(fn, *args, **kwargs):
        # Backward recomputes a checkpointed block outside this context's torch-function mode: give the
        # recomputation the same CUDA op lists, or it runs LayerNorm/softmax in bf16 where the forward saved fp32.
        return checkpoint(fn, *args, context_fn=lambda: (contextlib.nullcontext(), _CudaAutocastLists()), **kwargs)

    with contextlib.ExitStack() as stack:
        stack.enter_context(_CudaAutocastLists())
        stack.enter_context(mock.patch("models.policy.checkpoint", recompute_as_on_a_gpu))
        if arch.kernel_impl != "torch":
            stack.enter_context(mock.patch("models.kernels.dispatch._resolve", lambda impl, q, variant: "triton"))
            stack.enter_context(mock.patch("models.modules.triangle_attention.kernels_read_views",
                                           lambda z, impl: True))
        yield


def trace_full_depth(arch: ModelConfig, shape: StepShape, *, ema: bool = True, gpu: bool = True) -> StepMemory:
    """One fake-tensor trace of a training step of ``arch`` at its own depth, as on a GPU (``gpu``) or as on
    this CPU (see the module docstring)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from models import losses
    from models.model import SeedFold

    t0 = time.process_time()
    with torch.device("meta"):
        model = SeedFold(arch)
    if shape.confidence:
        trainable = model.parameters()
    else:  # the head learns only from the confidence loss; without it the run freezes the head
        if model.confidence_head is not None:
            model.confidence_head.requires_grad_(False)
        trainable = (p for p in model.parameters() if p.requires_grad)
    real = synthetic_batch(shape)
    patch = mock.patch.object(losses, "bond_loss", _zero_bond_loss)
    device = _as_on_a_gpu(arch) if gpu else contextlib.nullcontext()
    with FakeTensorMode(allow_non_fake_inputs=True) as fake, patch, device:
        model = model.to_empty(device="cpu").train()
        params = [p for p in trainable]
        # On a GPU torch takes Adam's multi-tensor (foreach) path, whose temporaries hold a moment-sized buffer.
        optimizer = torch.optim.Adam(params, lr=1e-3, foreach=gpu)
        # Steady state of a micro-batch: Adam's moments exist (made by an earlier step) and the gradients
        # accumulated by earlier micro-batches are alive (the worst case; without accumulation they are not).
        for p in params:
            p.grad = torch.zeros_like(p)
        optimizer.step()
        batch = {k: fake.from_tensor(v) for k, v in real.items()}
        shadow = [p.detach().clone().float() for p in params] if ema else []
        tracker = _PeakTracker()
        _skip_frozen(tracker, model)
        tracker.track_external(model, optimizer, *shadow)
        phases: dict[str, tuple[int, dict[str, int]]] = {}

        def close(phase: str) -> None:
            phases[phase] = _snapshot(tracker)
            tracker.restart_peak()

        hooks = [model.pairformer.register_full_backward_pre_hook(lambda *_: close("backward")),
                 model.pairformer.register_full_backward_hook(lambda *_: close("pairformer backward"))]
        with tracker:
            out = model(batch, n_cycles=1, diffusion_batch=shape.diffusion_batch, with_confidence=shape.confidence)
            loss = losses.compute_losses(out, batch, confidence=shape.confidence)["loss"]
            close("forward")
            loss.backward()
            del out, loss
            optimizer.step()
            for s, p in zip(shadow, params, strict=True):
                s.lerp_(p.detach().float(), 0.001)
            close("rest")
        for hook in hooks:
            hook.remove()
    if set(phases) != set(PHASES):
        raise RuntimeError(f"a traced step went through phases {sorted(phases)}, expected {PHASES}")
    peak, by_category = max(phases.values(), key=lambda phase: phase[0])
    return StepMemory(peak, by_category, 1, time.process_time() - t0, phases)


@dataclass(frozen=True)
class PredictShape:
    """What one ``harness predict`` call holds: one target of N tokens, A atoms, S MSA rows; ``n_samples``
    diffusion samples drawn together over ``n_steps`` sampler steps (memory does not grow with the steps: the
    pair biases are made once, each step replaces the coordinates); pair operations chunked by ``chunk_size``
    rows (``harness.predict.auto_chunk_size``)."""

    n_tokens: int
    n_atoms: int
    n_msa: int
    n_samples: int = 5
    n_steps: int = 2
    chunk_size: int | None = None


def trace_predict_full_depth(arch: ModelConfig, shape: PredictShape, *, gpu: bool = True) -> StepMemory:
    """One fake-tensor trace of ``SeedFold.sample`` (trunk with one recycling cycle, the sampler, the distogram
    and the confidence head, no autograd) with the weights on the device, as ``harness predict`` runs it: the
    peak and what was alive then (parameters, buffers; everything else is ``temporaries``/``activations``)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from models.model import SeedFold

    t0 = time.process_time()
    with torch.device("meta"):
        model = SeedFold(arch)
    real = synthetic_batch(StepShape(shape.n_tokens, shape.n_atoms, shape.n_msa, diffusion_batch=1))
    device = _as_on_a_gpu(arch) if gpu else contextlib.nullcontext()
    # The sampler reads its noise levels as numbers: computed for real (n_steps + 1 values), not traced.
    from models import sampling

    schedule = mock.patch.object(sampling, "noise_levels", functools.partial(_real_values, sampling.noise_levels))
    with FakeTensorMode(allow_non_fake_inputs=True) as fake, device, schedule:
        model = model.to_empty(device="cpu").eval()
        model.set_chunk_size(shape.chunk_size)
        batch = {k: fake.from_tensor(v) for k, v in real.items()}
        tracker = _PeakTracker()
        tracker.track_external(model)
        with tracker, torch.no_grad():
            out = _Sampling(model)(batch, n_cycles=1, n_samples=shape.n_samples, n_steps=shape.n_steps)
            del out
    return _peak_of(tracker, t0)


class _Sampling(torch.nn.Module):
    """``model.sample`` as one module call: MemTracker refuses a module called twice at the top level, which the
    sampler's denoiser is at every step unless something encloses it."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor], **options) -> dict[str, Tensor]:
        return self.model.sample(batch, **options)


def _real_values(fn, *args, **kwargs):
    """``fn``'s result computed on real tensors inside a fake-tensor trace (values the code reads as numbers)."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    with unset_fake_temporarily():
        return fn(*args, **kwargs)


def _snapshot(tracker) -> tuple[int, dict[str, int]]:
    """The tracker's peak so far: bytes and bytes by category."""
    peak = tracker.get_tracker_snapshot("peak")
    snap = next(iter(peak.values()), {})
    by_category = {_MEMTRACKER_NAMES[str(k.value)]: int(v) for k, v in snap.items() if k != "Total"}
    return int(snap.get("Total", 0)), {c: by_category.get(c, 0) for c in CATEGORIES}


def _peak_of(tracker, t0: float) -> StepMemory:
    total, by_category = _snapshot(tracker)
    return StepMemory(total, by_category, 1, time.process_time() - t0)


def depth_units(arch: ModelConfig, fields: tuple[str, ...] = DEPTH_FIELDS) -> dict[str, int]:
    """Blocks per unit of depth extrapolation, per stack in ``fields``: 1, or the trunk Pairformer's checkpoint
    group (``policy.checkpoint_group``; memory then grows by a group's worth, not a block's)."""
    group = arch.policy.group_in_effect()
    return {f: 1 for f in fields} | {"n_pairformer_blocks": min(group, arch.n_pairformer_blocks)}


def trace_step(arch: ModelConfig, shape: StepShape, *, trace=None, fields: tuple[str, ...] = DEPTH_FIELDS
               ) -> StepMemory:
    """The peak of a training step of ``arch`` at ``shape``: traced at 1 and 2 units of each stack in
    ``DEPTH_FIELDS`` (a block, or for a trunk checkpointed in groups of g blocks, g and 2g blocks; see
    ``depth_units``) and extrapolated linearly to the real depths, per category (3 traces). A depth that is not a
    multiple of its unit counts its last, shorter group as a whole one (an upper bound). ``trace(arch, shape)``
    runs one trace (default :func:`trace_full_depth`; a cache passes its own; :func:`trace_predict_full_depth`
    with a ``PredictShape`` gives a prediction's peak, where the extra blocks add only their weights; pass
    ``fields=PREDICT_DEPTH_FIELDS`` then).

    Each phase's peak (``PHASES``) is extrapolated apart and the largest is the answer: at 1 and 2 blocks the
    step can peak in a phase whose memory grows with depth by a block's weights only (the MSA module's backward,
    every Pairformer block's input already freed), while the forward phase and the Pairformer's backward hold
    every block's input and grow by that too; at 48 blocks one of those can be the higher one (the paper's large
    configuration at crop 640, BENCHMARKS.md)."""
    trace = trace or trace_full_depth
    one = depth_units(arch, fields)
    base = trace(arch.model_copy(update=one), shape)
    twos = []
    for f in fields:
        if getattr(arch, f) > one[f]:
            times = math.ceil(getattr(arch, f) / one[f]) - 1
            twos.append((times, trace(arch.model_copy(update=one | {f: 2 * one[f]}), shape)))

    def extrapolate(total, categories) -> tuple[int, dict[str, int]]:
        peak, cats = total(base), dict(categories(base))
        for times, two in twos:
            peak += times * (total(two) - total(base))
            for c in CATEGORIES:
                cats[c] += times * (categories(two)[c] - categories(base)[c])
        return peak, cats

    seconds = base.seconds + sum(two.seconds for _, two in twos)
    if base.phases is None or any(two.phases is None for _, two in twos):
        peak, cats = extrapolate(lambda m: m.peak_bytes, lambda m: m.by_category)
        return StepMemory(peak, cats, 1 + len(twos), seconds)
    phases = {phase: extrapolate(lambda m, p=phase: m.phases[p][0], lambda m, p=phase: m.phases[p][1])
              for phase in base.phases}
    peak, cats = max(phases.values(), key=lambda phase: phase[0])
    return StepMemory(peak, cats, 1 + len(twos), seconds, phases)
