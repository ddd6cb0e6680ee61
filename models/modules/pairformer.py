"""The pair block shared by every pair stack (MSA module, Pairformer, template embedder, confidence head) and
the Pairformer (AF3 Algorithm 17). Block order and dropout follow docs/DESIGN.md §1.2."""

from __future__ import annotations

from torch import Tensor, nn

from models.config import ModelConfig
from models.modules.attention_pair_bias import AttentionPairBias
from models.modules.primitives import Transition, shared_dropout
from models.modules.triangle_attention import TriangleAttentionEndingNode, TriangleAttentionStartingNode
from models.modules.triangle_multiplication import TriangleMultiplicationIncoming, TriangleMultiplicationOutgoing
from models.policy import checkpointed


class PairBlock(nn.Module):
    """AF3 Algorithm 17 [Lines 2-6]: triangle updates and pair transition on z (B, N, N, c_z) with pair_mask
    (B, N, N) bool; the pair half of the Pairformer block, shared by every pair stack.

    Widths by the width rule, ``ModelConfig.pair_widths(c_z)``.
    """

    def __init__(self, config: ModelConfig, c_z: int) -> None:
        super().__init__()
        c_hidden, heads, _ = config.pair_widths(c_z)
        self.dropout = config.pair_dropout
        self.tri_mul_out = TriangleMultiplicationOutgoing(c_z, c_hidden, kernel_impl=config.kernel_impl)
        self.tri_mul_in = TriangleMultiplicationIncoming(c_z, c_hidden, kernel_impl=config.kernel_impl)
        kwargs = dict(
            variant=config.triangle_attention,
            bias_activation=config.linear_bias_activation,
            kernel_impl=config.kernel_impl,
            chunk_size=config.chunk_size,
        )
        self.tri_att_start = TriangleAttentionStartingNode(c_z, heads, config.tri_att_head_dim, **kwargs)
        self.tri_att_end = TriangleAttentionEndingNode(c_z, heads, config.tri_att_head_dim, **kwargs)
        self.transition = Transition(c_z, config.transition_expansion)
        self.sublayer_checkpointing = config.policy.checkpoint_blocks and config.policy.checkpoint_sublayers is True

    def forward(self, z: Tensor, pair_mask: Tensor) -> Tensor:
        p, train = self.dropout, self.training
        on = self.sublayer_checkpointing and train  # dropout masks are redrawn alike: checkpoint keeps the RNG state
        z = z + checkpointed(_dropped, self.tri_mul_out, z, pair_mask, p, 1, train, enabled=on)
        z = z + checkpointed(_dropped, self.tri_mul_in, z, pair_mask, p, 1, train, enabled=on)
        z = z + checkpointed(_dropped, self.tri_att_start, z, pair_mask, p, 1, train, enabled=on)
        z = z + checkpointed(_dropped, self.tri_att_end, z, pair_mask, p, 2, train, enabled=on)
        return z + checkpointed(self.transition, z, enabled=on)


def _dropped(update: nn.Module, z: Tensor, pair_mask: Tensor, p: float, dim: int, training: bool) -> Tensor:
    """``update(z, pair_mask)`` with AF3's shared dropout along ``dim``."""
    return shared_dropout(update(z, pair_mask), p, dim=dim, training=training)


class PairformerBlock(nn.Module):
    """AF3 Algorithm 17 [Lines 2-8], one Pairformer block: the pair block, then single attention with pair bias
    and a single transition.

    s (B, N, c_s), z (B, N, N, c_z), token_mask (B, N) bool -> (s, z).
    """

    def __init__(self, config: ModelConfig, c_s: int, c_z: int) -> None:
        super().__init__()
        self.pair = PairBlock(config, c_z)
        self.attention = AttentionPairBias(c_s, c_z, config.n_single_heads)
        self.transition = Transition(c_s, config.transition_expansion)

    def forward(self, s: Tensor, z: Tensor, token_mask: Tensor) -> tuple[Tensor, Tensor]:
        pair_mask = token_mask[:, :, None] & token_mask[:, None, :]
        z = self.pair(z, pair_mask)
        on = self.pair.sublayer_checkpointing and self.training
        s = s + checkpointed(self.attention, s[:, None], z, token_mask, enabled=on)[:, 0]
        return s + self.transition(s), z


class Pairformer(nn.Module):
    """AF3 Algorithm 17: ``n_blocks`` Pairformer blocks, each checkpointed when ``policy.checkpoint_blocks``.

    The trunk's (``trunk=True``) is also checkpointed in groups of ``policy.checkpoint_group`` blocks: the forward
    keeps one (s, z) per group; backward recomputes a group, its blocks checkpointed inside it (their inputs
    kept), then recomputes each block. Values and gradients are those of per-block checkpointing (each
    checkpoint restores the RNG state, so dropout masks are drawn alike)."""

    def __init__(
        self, config: ModelConfig, n_blocks: int, c_s: int | None = None, c_z: int | None = None, *,
        trunk: bool = False,
    ) -> None:
        super().__init__()
        self.checkpointing = config.policy.checkpoint_blocks
        self.group = config.policy.group_in_effect() if trunk else 1
        c_s, c_z = c_s or config.c_s, c_z or config.c_z
        self.blocks = nn.ModuleList(PairformerBlock(config, c_s, c_z) for _ in range(n_blocks))

    def forward(self, s: Tensor, z: Tensor, token_mask: Tensor) -> tuple[Tensor, Tensor]:
        on = self.checkpointing and self.training
        if on and self.group > 1:
            for i in range(0, len(self.blocks), self.group):
                s, z = checkpointed(_blocks, self.blocks[i : i + self.group], s, z, token_mask, enabled=True)
            return s, z
        return _blocks(self.blocks, s, z, token_mask, checkpointing=on)


def _blocks(blocks: nn.ModuleList, s: Tensor, z: Tensor, token_mask: Tensor, *, checkpointing: bool = True
            ) -> tuple[Tensor, Tensor]:
    """``blocks`` applied in turn, each checkpointed when ``checkpointing`` and autograd records."""
    for block in blocks:
        s, z = checkpointed(block, s, z, token_mask, enabled=checkpointing)
    return s, z


class PairStack(nn.Module):
    """``n_blocks`` pair-only blocks (template embedder's stack): z (B, N, N, c) -> same."""

    def __init__(self, config: ModelConfig, n_blocks: int, c_z: int) -> None:
        super().__init__()
        self.checkpointing = config.policy.checkpoint_blocks
        self.blocks = nn.ModuleList(PairBlock(config, c_z) for _ in range(n_blocks))

    def forward(self, z: Tensor, pair_mask: Tensor) -> Tensor:
        for block in self.blocks:
            z = checkpointed(block, z, pair_mask, enabled=self.checkpointing and self.training)
        return z
