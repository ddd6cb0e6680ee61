"""One memory and precision policy, read by every stack of the model (docs/DESIGN.md §2).

- Precision: bf16 autocast for the trunk (template embedder, MSA module, Pairformer) when
  ``trunk_precision="bf16"``; the confidence head's Pairformer follows ``confidence_precision``; the diffusion
  (structure) module and the losses always run in fp32 (bf16 there drops lDDT markedly).
- Memory: with ``checkpoint_blocks`` every stack (template pair stack, MSA module, Pairformer, confidence
  Pairformer, diffusion transformer, and the three stages of the diffusion module's pair conditioning) recomputes
  each block's activations in backward, so only the block inputs stay alive; with ``checkpoint_sublayers`` each
  update inside a pair block is recomputed on its own (backward then holds one update's activations at a time, not
  a whole block's); with ``checkpoint_group`` the trunk Pairformer's blocks are checkpointed in groups as well (the
  forward then holds one input per group); the OuterProductMean runs ``opm_chunk_size`` rows of i at a time and
  never holds the (B, N, N, c, c) outer product; the diffusion module runs ``diffusion_chunk_size`` noised copies
  at a time (``auto``: chosen per stage from a traced training step, ``harness.memory.plan``).
- Matmuls: TF32 on CUDA (``tf32``), set by ``apply_backend`` where a run or a prediction starts.

``checkpointed(fn, *args, enabled=...)`` is the one place that applies checkpointing, so a test can count it.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from torch.utils.checkpoint import checkpoint

Precision = Literal["fp32", "bf16"]

# The modules whose precision the policy decides, in forward order; "diffusion" and "losses" are fixed fp32.
MODULES = ("template_embedder", "msa_module", "pairformer", "confidence_head", "diffusion_module", "losses")
STACKS = ("template_embedder", "msa_module", "pairformer", "confidence_head", "diffusion_transformer")


class MemoryPolicy(BaseModel):
    """Precision and activation-memory settings of every stack (``model.policy`` in a run config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trunk_precision: Precision = Field(
        "fp32", description="template embedder + MSA module + Pairformer autocast dtype (paper: bf16)"
    )
    confidence_precision: Precision = Field("fp32", description="confidence head's Pairformer autocast dtype")
    checkpoint_blocks: bool = Field(
        False, description="per-block activation checkpointing in every stack (recompute in backward)"
    )
    checkpoint_sublayers: bool | Literal["auto"] = Field(
        False, description="with checkpoint_blocks, also recompute each pair-block update (the triangle "
        "multiplications and attentions, the transitions, single attention) on its own inside the block's "
        "recomputation: backward holds one update's activations, not a whole block's, for a third more trunk "
        "compute; auto = on only where no diffusion chunking keeps the traced step within memory_target_gb"
    )
    checkpoint_group: int | Literal["auto"] = Field(
        1, description="with checkpoint_blocks, the trunk Pairformer's blocks are also checkpointed in groups of "
        "this many (two levels: the forward keeps one pair representation per group, backward recomputes a group "
        "keeping its blocks' inputs, then each block): about n/g + g pair representations alive instead of n, for "
        "one more Pairformer forward; auto = 1 unless the traced step exceeds memory_target_gb with sub-layer "
        "checkpointing, then the divisor of the depth nearest its square root"
    )
    opm_chunk_size: int | None = Field(
        64, ge=1, description="OuterProductMean rows per chunk (None = all rows at once)"
    )
    diffusion_chunk_size: int | Literal["auto"] | None = Field(
        None, description="noised copies per diffusion-module call (None = the whole diffusion batch; auto = "
        "the most that keep a traced training step within memory_target_gb, chosen per stage)"
    )
    memory_target_gb: float = Field(
        72.0, gt=0, description="GB per GPU that diffusion_chunk_size: auto aims under (72 = an 80 GB GPU less "
        "10 % headroom)"
    )
    tf32: bool = Field(True, description="TF32 matmuls and convolutions on CUDA")

    @field_validator("checkpoint_group", "diffusion_chunk_size")
    @classmethod
    def _positive_count(cls, value, info: ValidationInfo):
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            other = ", 'auto' or null" if info.field_name == "diffusion_chunk_size" else " or 'auto'"
            raise ValueError(f"{info.field_name} must be >= 1{other}, got {value}")
        return value

    def group_in_effect(self) -> int:
        """Trunk Pairformer blocks per outer checkpoint as the model applies it: ``checkpoint_group`` under
        ``checkpoint_blocks``, else 1 (``auto`` unresolved also runs as 1: it is resolved per training stage,
        ``harness.memory.plan``, before the model is built)."""
        group = self.checkpoint_group
        return group if self.checkpoint_blocks and isinstance(group, int) else 1

    def precision_by_module(self) -> dict[str, str]:
        """Module -> the dtype it computes in, as shown by the dry-run."""
        t = self.trunk_precision
        return {"template_embedder": t, "msa_module": t, "pairformer": t,
                "confidence_head": self.confidence_precision, "diffusion_module": "fp32", "losses": "fp32"}

    def autocast(self, device: torch.device, precision: Precision):
        """bf16 autocast on ``device`` for ``precision="bf16"``, otherwise nothing (inputs keep their dtype)."""
        if precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def apply_backend(self) -> None:
        """Process-wide matmul settings (TF32 on CUDA); a no-op without CUDA."""
        if torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32


def checkpointed(fn, *args, enabled: bool):
    """``fn(*args)``, recomputed in backward when ``enabled`` and autograd records (a no-grad recycling cycle
    has nothing to save, so checkpointing it would only cost time)."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)
