"""Token frames for the PAE (AF3 SI §4.3.2, Algorithm 30) and the atoms the confidence head measures.

Every token gets three frame atoms (a, b, c) with the origin at b:
- amino acids: (N, CA, C); nucleotides: (C1', C3', C4') — found by atom name inside the token;
- single-atom tokens (ligand atoms, atoms of modified residues): b is the token's atom, a and c its nearest and
  second-nearest single-atom tokens of the same chain in the reference structure (ground truth).
A frame is invalid when an atom is missing or unresolved, or when a, b, c are (nearly) colinear: the angle a-b-c
outside [25°, 155°] (AF3's colinearity mask).

Shapes: B batch, S samples, N tokens, A atoms; coordinates in Å.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from models.lddt import EXACT

PROTEIN_FRAME_ATOMS = ("N", "CA", "C")
NUCLEOTIDE_FRAME_ATOMS = ("C1'", "C3'", "C4'")
MIN_FRAME_ANGLE_DEG = 25.0  # AF3: frames whose angle a-b-c lies within 25° of 0° or 180° are masked


def _name_code(name: str) -> Tensor:
    """An atom name as ``ref_atom_name_chars`` stores it: 4 characters, ord(c) - 32, space-padded (0)."""
    return torch.tensor([ord(c) - 32 for c in name.ljust(4)], dtype=torch.long)


def atom_named(batch: dict[str, Tensor], name: str) -> Tensor:
    """Per token, the index of its atom called ``name`` (B, N) long, or -1 where the token has none."""
    chars = batch["ref_atom_name_chars"]
    hit = (chars == _name_code(name).to(chars.device)).all(-1) & batch["atom_mask"]  # (B, A)
    b, a = hit.shape
    position = torch.arange(a, device=hit.device).expand(b, a)
    value = torch.where(hit, position, torch.full_like(position, -1))
    n = batch["token_mask"].shape[1]
    out = torch.full((b, n), -1, dtype=torch.long, device=hit.device)
    return out.scatter_reduce(1, batch["atom_to_token"], value, reduce="amax")


def _single_atom_tokens(batch: dict[str, Tensor]) -> Tensor:
    """(B, N) bool: real tokens made of exactly one atom (ligand atoms and modified-residue atoms)."""
    counts = torch.zeros(batch["token_mask"].shape, device=batch["atom_mask"].device)
    counts = counts.scatter_add(1, batch["atom_to_token"], batch["atom_mask"].float())
    return batch["token_mask"] & (counts == 1)


def frame_atoms(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Frame atoms (B, N, 3) long (a, b, c) and validity (B, N) bool, chosen on the ground truth."""
    resolved = batch["atom_mask"] & batch["gt_atom_mask"]
    token_mask = batch["token_mask"]
    idx = torch.zeros((*token_mask.shape, 3), dtype=torch.long, device=token_mask.device)
    found = torch.zeros_like(token_mask)
    for names in (PROTEIN_FRAME_ATOMS, NUCLEOTIDE_FRAME_ATOMS):
        named = torch.stack([atom_named(batch, n) for n in names], -1)  # (B, N, 3)
        complete = (named >= 0).all(-1) & ~found
        idx = torch.where(complete[..., None], named, idx)
        found = found | complete

    single = _single_atom_tokens(batch) & ~found
    centre = batch["token_center_atom"]
    x = torch.gather(batch["gt_coords"].float(), 1, centre[..., None].expand(-1, -1, 3))
    ok = single & torch.gather(resolved, 1, centre)
    same_chain = batch["asym_id"][:, :, None] == batch["asym_id"][:, None, :]
    candidate = ok[:, :, None] & ok[:, None, :] & same_chain
    candidate = candidate & ~torch.eye(candidate.shape[-1], dtype=torch.bool, device=candidate.device)
    d = torch.cdist(x, x, compute_mode=EXACT).masked_fill(~candidate, float("inf"))
    k = min(2, d.shape[-1])
    near_d, near = d.topk(k, dim=-1, largest=False)
    if k == 2:
        has_two = torch.isfinite(near_d).all(-1)
        first, second = (torch.gather(centre, 1, near[..., k]) for k in range(2))
        ligand_idx = torch.stack([first, centre, second], -1)
        use = single & has_two
        idx = torch.where(use[..., None], ligand_idx, idx)
        found = found | use

    atoms_ok = torch.gather(resolved, 1, idx.flatten(1)).view(idx.shape).all(-1)
    valid = found & token_mask & atoms_ok & ~colinear(batch["gt_coords"].float(), idx)
    return idx, valid


def colinear(x: Tensor, idx: Tensor) -> Tensor:
    """(B, N) bool: angle a-b-c of the frame atoms ``idx`` (B, N, 3) in x (B, A, 3) within 25° of 0° or 180°."""
    a, b, c = (torch.gather(x, 1, idx[..., k, None].expand(-1, -1, 3)) for k in range(3))
    cos = F.cosine_similarity(a - b, c - b, dim=-1, eps=1e-8)
    limit = math.cos(math.radians(MIN_FRAME_ANGLE_DEG))
    return cos.abs() > limit


def build_frames(x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """AF3 Algorithm 29 on coordinates x (B, S, A, 3) and frame atoms idx (B, N, 3): origin (B, S, N, 3) at b
    and rotation (B, S, N, 3, 3) with rows e1, e2, e3."""
    s = x.shape[1]
    a, b, c = (torch.gather(x, 2, idx[:, None, :, k, None].expand(-1, s, -1, 3)) for k in range(3))
    w1, w2 = F.normalize(a - b, dim=-1), F.normalize(c - b, dim=-1)
    e1 = F.normalize(w1 + w2, dim=-1)
    e2 = F.normalize(w2 - w1, dim=-1)
    return b, torch.stack([e1, e2, torch.cross(e1, e2, dim=-1)], dim=-2)


def aligned_errors(x_pred: Tensor, x_true: Tensor, idx: Tensor, centre: Tensor) -> Tensor:
    """AF3 Algorithm 30: e_ij = |T_i^-1 x_j - T*_i^-1 x*_j| (B, S, N, N) Å with x_j token j's centre atom."""
    local = []
    for x in (x_pred, x_true):
        origin, rot = build_frames(x, idx)
        xc = torch.gather(x, 2, centre[:, None, :, None].expand(-1, x.shape[1], -1, 3))
        local.append(torch.einsum("bsiuk,bsijk->bsiju", rot, xc[:, :, None] - origin[:, :, :, None]))
    return (local[0] - local[1]).norm(dim=-1)
