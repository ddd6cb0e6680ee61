"""Atom-level attention (AF3 Algorithms 5, 6, 7): the atom transformer over sequence-local windows, the
encoder that pools atoms into tokens and the decoder that broadcasts tokens back to atoms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import ModelConfig
from models.features import N_ATOM_NAME_CHARS, N_CHAR_CLASSES, N_ELEMENTS
from models.modules.atom_windows import AtomWindows
from models.modules.attention_pair_bias import AttentionPairBias
from models.modules.primitives import ConditionedTransition, linear, residual_block

REF_FEATURE_DIM = 3 + 1 + 1 + N_ELEMENTS + N_ATOM_NAME_CHARS * N_CHAR_CLASSES  # 389


def tokens_to_atoms(x: Tensor, atom_to_token: Tensor) -> Tensor:
    """Broadcast token values to their atoms: x (B, [S,] N, c), atom_to_token (B, A) -> (B, [S,] A, c)."""
    if x.dim() == 3:
        return torch.gather(x, 1, atom_to_token[..., None].expand(-1, -1, x.shape[-1]))
    idx = atom_to_token[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[-1])
    return torch.gather(x, 2, idx)


def atoms_to_tokens(x: Tensor, atom_to_token: Tensor, atom_mask: Tensor, n_tokens: int) -> Tensor:
    """Mean over each token's real atoms: x (B, S, A, c) -> (B, S, N, c); tokens without atoms get 0."""
    b, s, _, c = x.shape
    w = atom_mask.to(x.dtype)
    idx = atom_to_token[:, None, :, None].expand(-1, s, -1, c)
    total = x.new_zeros(b, s, n_tokens, c).scatter_add_(2, idx, x * w[:, None, :, None])
    count = x.new_zeros(b, n_tokens).scatter_add_(1, atom_to_token, w)
    return total / count.clamp(min=1.0)[:, None, :, None]


class AtomTransformer(nn.Module):
    """AF3 Algorithm 7 (a diffusion transformer on windowed atoms, β = window mask), its blocks in
    ``config.transformer_block_order`` (``residual_block``; sequential by default, as AF3's code).

    q (B, S, A, c_atom), c (B, 1, A, c_atom), p (B, n_blocks, n_queries, n_keys, c_atompair) -> q.
    """

    def __init__(self, config: ModelConfig, n_blocks: int) -> None:
        super().__init__()
        c, n = config.c_atom, config.diffusion_transition_expansion
        self.attention = nn.ModuleList(
            AttentionPairBias(c, config.c_atompair, config.n_atom_heads, c_cond=c) for _ in range(n_blocks)
        )
        self.transition = nn.ModuleList(ConditionedTransition(c, c, n) for _ in range(n_blocks))
        self.order = config.transformer_block_order

    def forward(self, q: Tensor, c: Tensor, p: Tensor, windows: AtomWindows, atom_mask: Tensor) -> Tensor:
        for attention, transition in zip(self.attention, self.transition, strict=True):
            q = residual_block(q, lambda x, att=attention: att(x, p, atom_mask, s=c, windows=windows),
                               lambda x, tr=transition: tr(x, c), self.order)
        return q


class AtomAttentionEncoder(nn.Module):
    """AF3 Algorithm 5. Reference-conformer features -> per-token activations a (B, S, N, c_out).

    Without trunk inputs (input embedder) S = 1. With them (diffusion module) the noisy positions
    r (B, S, A, 3), s_trunk (B, N, c_s) and z (B, N, N, c_z) condition the atoms. Also returns the skips
    (q, c, p) for the decoder and the window layout.
    """

    def __init__(self, config: ModelConfig, c_out: int, *, with_trunk: bool) -> None:
        super().__init__()
        ca, cp = config.c_atom, config.c_atompair
        self.config = config
        self.embed_ref = linear(REF_FEATURE_DIM, ca)
        self.embed_offset = linear(3, cp)
        self.embed_inv_dist = linear(1, cp)
        self.embed_valid = linear(1, cp)
        self.with_trunk = with_trunk
        if with_trunk:
            # AF3 starts the trunk's conditioning of the atoms at zero (``models.init``, "adaptive_zero").
            self.norm_s, self.proj_s = nn.LayerNorm(config.c_s), linear(config.c_s, ca, init="adaptive_zero")
            self.norm_z, self.proj_z = nn.LayerNorm(config.c_z), linear(config.c_z, cp, init="adaptive_zero")
            self.proj_r = linear(3, ca)
        self.proj_c_row = linear(ca, cp)
        self.proj_c_col = linear(ca, cp)
        self.pair_mlp = nn.Sequential(
            nn.ReLU(), linear(cp, cp), nn.ReLU(), linear(cp, cp), nn.ReLU(), linear(cp, cp)
        )
        self.transformer = AtomTransformer(config, config.n_atom_encoder_blocks)
        self.proj_out = linear(ca, c_out)

    def forward(
        self,
        batch: dict[str, Tensor],
        r: Tensor | None = None,
        s_trunk: Tensor | None = None,
        z: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, AtomWindows]:
        atom_mask, atom_to_token = batch["atom_mask"], batch["atom_to_token"]
        windows = AtomWindows.build(atom_mask, self.config.atom_window_queries, self.config.atom_window_keys)
        dtype = self.embed_ref.weight.dtype
        ref = torch.cat(
            [
                batch["ref_pos"],
                batch["ref_charge"][..., None],
                atom_mask[..., None],
                F.one_hot(batch["ref_element"], N_ELEMENTS),
                F.one_hot(batch["ref_atom_name_chars"], N_CHAR_CLASSES).flatten(-2),
            ],
            dim=-1,
        ).to(dtype)
        c = self.embed_ref(ref)  # (B, A, c_atom)

        pos_q, pos_k = windows.queries(batch["ref_pos"], 1), windows.keys(batch["ref_pos"], 1)
        offset = (pos_q[:, :, :, None] - pos_k[:, :, None]).to(dtype)  # (B, n, Wq, Wk, 3)
        uid = batch["ref_space_uid"]
        valid = (windows.queries(uid, 1)[:, :, :, None] == windows.keys(uid, 1)[:, :, None]) & (
            windows.query_valid[:, :, :, None] & windows.key_valid[:, :, None]
        )
        v = valid[..., None].to(dtype)
        inv_dist = 1.0 / (1.0 + offset.pow(2).sum(-1, keepdim=True))
        p = (self.embed_offset(offset) + self.embed_inv_dist(inv_dist) + self.embed_valid(v)) * v

        if self.with_trunk:
            c = c + tokens_to_atoms(self.proj_s(self.norm_s(s_trunk)), atom_to_token)
            z_atoms = self.proj_z(self.norm_z(z))  # (B, N, N, c_atompair), projected before the gather
            tok_q, tok_k = windows.queries(atom_to_token, 1), windows.keys(atom_to_token, 1)
            bidx = torch.arange(z.shape[0], device=z.device)[:, None, None, None]
            p = p + z_atoms[bidx, tok_q[:, :, :, None], tok_k[:, :, None, :]]
        c_q = windows.queries(F.relu(c), 1)
        c_k = windows.keys(F.relu(c), 1)
        p = p + self.proj_c_row(c_q)[:, :, :, None] + self.proj_c_col(c_k)[:, :, None]
        p = p + self.pair_mlp(p)

        q = c[:, None]
        if self.with_trunk:
            q = q + self.proj_r(r)
        q = self.transformer(q, c[:, None], p, windows, atom_mask)
        a = atoms_to_tokens(F.relu(self.proj_out(q)), atom_to_token, atom_mask, batch["token_mask"].shape[1])
        return a, q, c, p, windows


class AtomAttentionDecoder(nn.Module):
    """AF3 Algorithm 6: token activations a (B, S, N, c_token) -> position updates (B, S, A, 3)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.proj_in = linear(config.c_token, config.c_atom)
        self.transformer = AtomTransformer(config, config.n_atom_decoder_blocks)
        self.norm_out = nn.LayerNorm(config.c_atom)
        self.proj_out = linear(config.c_atom, 3, init="zeros")  # the update starts at 0: x_denoised = c_skip·x

    def forward(
        self, a: Tensor, q_skip: Tensor, c_skip: Tensor, p_skip: Tensor, windows: AtomWindows, batch: dict
    ) -> Tensor:
        q = self.proj_in(tokens_to_atoms(a, batch["atom_to_token"])) + q_skip
        q = self.transformer(q, c_skip[:, None], p_skip, windows, batch["atom_mask"])
        return self.proj_out(self.norm_out(q))
