"""Tiny configs and feature batches for model tests."""

from __future__ import annotations

import pytest
import torch

from models.config import ModelConfig
from models.features import FEATURES, N_RESTYPES


def tiny_config(**overrides) -> ModelConfig:
    base = dict(
        c_s=32, c_z=16, c_m=8, c_atom=16, c_atompair=8, c_token=32, tri_att_head_dim=8, n_single_heads=4,
        opm_hidden=4, pwa_heads=2, pwa_head_dim=4, n_pairformer_blocks=1, n_msa_blocks=1, n_template_blocks=1,
        n_diffusion_blocks=1, n_diffusion_heads=4, n_atom_encoder_blocks=1, n_atom_decoder_blocks=1,
        n_atom_heads=2, n_confidence_blocks=1, atom_window_queries=8, atom_window_keys=16, n_fourier=16,
        c_template=16, max_atoms_per_token=4, pair_dropout=0.0, msa_dropout=0.0,
    )  # fmt: skip
    base.update(overrides)
    return ModelConfig(**base)


_NAME_CODES = torch.tensor([[ord(c) - 32 for c in name.ljust(4)] for name in ("N", "CA", "C", "O", "CB", "CG")])


def random_example(n_tokens: int, atoms_per_token: int = 3, n_msa: int = 3, seed: int = 0) -> dict:
    """A valid example: two protein chains, ``atoms_per_token`` atoms per token on a helix-like trace."""
    g = torch.Generator().manual_seed(seed)
    n, a = n_tokens, n_tokens * atoms_per_token
    half = n // 2
    asym = torch.tensor([1] * half + [2] * (n - half))
    residue_index = torch.cat([torch.arange(half), torch.arange(n - half)])
    t = torch.arange(n, dtype=torch.float32)
    ca = torch.stack([2.3 * torch.cos(1.7 * t), 2.3 * torch.sin(1.7 * t), 1.5 * t], -1)
    offsets = torch.randn(atoms_per_token, 3, generator=g) * 1.2
    gt = (ca[:, None] + offsets[None]).reshape(a, 3)
    ex = {
        "token_mask": torch.ones(n, dtype=torch.bool),
        "residue_index": residue_index,
        "token_index": torch.arange(n),
        "asym_id": asym,
        "entity_id": asym.clone(),
        "sym_id": torch.zeros(n, dtype=torch.long),
        "restype": torch.randint(0, 20, (n,), generator=g),
        "is_protein": torch.ones(n, dtype=torch.bool),
        "is_rna": torch.zeros(n, dtype=torch.bool),
        "is_dna": torch.zeros(n, dtype=torch.bool),
        "is_ligand": torch.zeros(n, dtype=torch.bool),
        "token_bonds": torch.zeros(n, n, dtype=torch.bool),
        "token_center_atom": torch.arange(n) * atoms_per_token + min(1, atoms_per_token - 1),
        "token_disto_atom": torch.arange(n) * atoms_per_token + min(2, atoms_per_token - 1),
        "msa": torch.randint(0, 21, (n_msa, n), generator=g),
        "msa_mask": torch.ones(n_msa, n, dtype=torch.bool),
        "has_deletion": torch.zeros(n_msa, n),
        "deletion_value": torch.zeros(n_msa, n),
        "profile": torch.softmax(torch.randn(n, N_RESTYPES, generator=g), -1),
        "deletion_mean": torch.zeros(n),
        "atom_mask": torch.ones(a, dtype=torch.bool),
        "atom_to_token": torch.arange(n).repeat_interleave(atoms_per_token),
        "ref_pos": offsets.repeat(n, 1),
        "ref_element": torch.tensor([7, 6, 6, 8, 6, 6][:atoms_per_token]).repeat(n),
        "ref_charge": torch.zeros(a),
        # backbone names first (N, CA, C, ...), so the PAE has AF3's (N, CA, C) frames
        "ref_atom_name_chars": _NAME_CODES[:atoms_per_token].repeat(n, 1),
        "ref_space_uid": torch.arange(n).repeat_interleave(atoms_per_token),
        "gt_coords": gt,
        "gt_atom_mask": torch.ones(a, dtype=torch.bool),
    }
    ex["msa"][0] = ex["restype"]
    ex["token_bonds"][1, 5] = ex["token_bonds"][5, 1] = True  # a disulfide-like cross-link
    return ex


def pad_example(ex: dict, n_tokens: int, n_atoms: int, n_msa: int) -> dict:
    """Zero-pad one example to the given sizes (what a collate function does)."""
    sizes = {"N": n_tokens, "A": n_atoms, "S": n_msa}
    out = {}
    for name, spec in FEATURES.items():
        t = ex[name]
        target = [sizes.get(sym, int(sym) if sym.isdigit() else None) for sym in spec.shape]
        padded = torch.zeros(target, dtype=t.dtype)
        padded[tuple(slice(0, d) for d in t.shape)] = t
        out[name] = padded
    return out


def collate(examples: list[dict]) -> dict:
    n = max(e["token_mask"].shape[0] for e in examples)
    a = max(e["atom_mask"].shape[0] for e in examples)
    s = max(e["msa"].shape[0] for e in examples)
    padded = [pad_example(e, n, a, s) for e in examples]
    return {k: torch.stack([p[k] for p in padded]) for k in FEATURES}


@pytest.fixture
def tiny_batch() -> dict:
    return collate([random_example(12, seed=0), random_example(10, seed=1)])
