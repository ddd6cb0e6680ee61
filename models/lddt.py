"""All-atom lDDT in pure torch (validation metric and the pLDDT target), and AF3's smooth lDDT loss."""

from __future__ import annotations

import torch
from torch import Tensor

from models.policy import checkpointed

THRESHOLDS = (0.5, 1.0, 2.0, 4.0)  # Å
EXACT = "donot_use_mm_for_euclid_dist"  # cdist by differences: the matmul form errs by ~1e-3 Å at 100 Å


def _pair_weights(true: Tensor, mask: Tensor, cutoff: Tensor | float, exclude: Tensor | None) -> Tensor:
    """Scored pairs (..., A, A): both atoms real, l != m, reference distance < cutoff, not excluded."""
    d_true = torch.cdist(true, true)
    pair = mask[..., :, None] & mask[..., None, :] & (d_true < cutoff)
    pair = pair & ~torch.eye(true.shape[-2], dtype=torch.bool, device=true.device)
    if exclude is not None:
        pair = pair & ~exclude
    return pair


def lddt(
    pred: Tensor,
    true: Tensor,
    mask: Tensor,
    *,
    cutoff: float = 15.0,
    exclude: Tensor | None = None,
    per_atom: bool = False,
) -> Tensor:
    """lDDT of pred (..., A, 3) against true (..., A, 3) Å over real atoms ``mask`` (..., A) bool.

    Pools over pairs (global lDDT) unless ``per_atom`` (returns (..., A); atoms without partners get 1).
    ``exclude`` (..., A, A) bool removes pairs (e.g. intra-residue). Predicted positions of masked atoms are
    ignored, so missing model atoms should be marked by setting ``mask`` from the reference only and the
    caller decides how to score them.
    """
    pred, true = pred.float(), true.float()
    pair = _pair_weights(true, mask, cutoff, exclude)
    delta = (torch.cdist(pred, pred) - torch.cdist(true, true)).abs()
    score = sum((delta < t).float() for t in THRESHOLDS) / len(THRESHOLDS)
    w = pair.float()
    if per_atom:
        n = w.sum(-1)
        return torch.where(n > 0, (score * w).sum(-1) / n.clamp(min=1.0), torch.ones_like(n))
    return (score * w).sum((-1, -2)) / w.sum((-1, -2)).clamp(min=1.0)


def neighbour_pairs(
    true: Tensor, mask: Tensor, cutoff: Tensor, *, chunk: int = 1024
) -> tuple[Tensor, Tensor, Tensor]:
    """The scored pairs of lDDT as index lists, never an (A, A) tensor kept: atoms (l, m), l != m, both in
    ``mask`` (B, A) bool, with reference distance |x*_l - x*_m| < ``cutoff`` (B, A) Å of atom m.

    true (B, A, 3) Å. Returns l, m (B, P) long and valid (B, P) bool, P = the most pairs of any example; rows
    are scanned ``chunk`` atoms at a time (memory (chunk, A) per step)."""
    true = true.detach().float()
    b, a = mask.shape
    per_example = []
    for i in range(b):
        found = []
        for lo in range(0, a, chunk):
            hi = min(lo + chunk, a)
            d = torch.cdist(true[i, lo:hi], true[i], compute_mode=EXACT)  # (c, A)
            keep = (d < cutoff[i][None]) & mask[i, lo:hi, None] & mask[i][None]
            keep[torch.arange(hi - lo), torch.arange(lo, hi)] = False
            rows, cols = keep.nonzero(as_tuple=True)
            found.append(torch.stack([rows + lo, cols]))
        per_example.append(torch.cat(found, dim=1))
    p = max(1, max(x.shape[1] for x in per_example))
    idx = torch.zeros((b, 2, p), dtype=torch.long, device=true.device)
    valid = torch.zeros((b, p), dtype=torch.bool, device=true.device)
    for i, x in enumerate(per_example):
        idx[i, :, : x.shape[1]] = x
        valid[i, : x.shape[1]] = True
    return idx[:, 0], idx[:, 1], valid


def pair_distances(x: Tensor, l_idx: Tensor, m_idx: Tensor) -> Tensor:
    """|x_l - x_m| (B, D, P) Å for x (B, D, A, 3) and pair indices (B, P)."""
    d = x.shape[1]
    xl = torch.gather(x, 2, l_idx[:, None, :, None].expand(-1, d, -1, 3))
    xm = torch.gather(x, 2, m_idx[:, None, :, None].expand(-1, d, -1, 3))
    return (xl - xm).norm(dim=-1)


# Elements of one (B, D, rows, A) tensor of the blocked smooth lDDT: 2^23 fp32 values = 32 MiB, ~10 such tensors
# alive while a block is computed (or recomputed in backward).
LDDT_BLOCK_ELEMENTS = 2**23


def lddt_block_rows(batch_size: int, copies: int, n_atoms: int) -> int:
    """Rows of atoms l per block of :func:`smooth_lddt_loss` under autograd: a (B, D, rows, A) block holds at
    most ``LDDT_BLOCK_ELEMENTS`` values (at least one row)."""
    return max(1, min(n_atoms, LDDT_BLOCK_ELEMENTS // max(1, batch_size * copies * n_atoms)))


def smooth_lddt_loss(pred: Tensor, true: Tensor, mask: Tensor, is_nucleotide: Tensor) -> Tensor:
    """AF3 Algorithm 27: 1 - smooth lDDT, per example and copy (B, D). pred, true (B, D, A, 3) Å; mask (B, A)
    bool; is_nucleotide (B, A) bool gives the 30 Å inclusion radius to pairs whose atom m is DNA/RNA.

    Reference distances are taken from copy 0 of ``true`` (copies differ only by rigid motions). Under autograd
    the pairs are scored in blocks of :func:`lddt_block_rows` atoms l against all atoms m, each block recomputed in
    backward: static shapes, and memory (B, D, rows, A) per block instead of (B, D, A, A) kept for backward.
    Without autograd (validation) the pairs within the radius are listed once and scored sparsely, (B, D, P)."""
    cutoff = torch.where(is_nucleotide, 30.0, 15.0)
    if not torch.is_grad_enabled():
        return _smooth_lddt_sparse(pred, true, mask, cutoff)
    b, d, a, _ = pred.shape
    rows = lddt_block_rows(b, d, a)
    ref = true[:, :1].detach().float()
    pred = pred.float()
    score, count = pred.new_zeros(b, d), pred.new_zeros(b, 1)
    for lo in range(0, a, rows):
        hi = min(lo + rows, a)
        s, c = checkpointed(_block_terms, pred, ref, mask, cutoff, lo, hi, enabled=True)
        score, count = score + s, count + c
    return 1.0 - score / count.clamp(min=1.0)


def _block_terms(pred: Tensor, ref: Tensor, mask: Tensor, cutoff: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
    """Sums over the pairs (l in [lo, hi), any m) of the smooth lDDT score (B, D) and their count (B, 1)."""
    d_true = torch.cdist(ref[:, :, lo:hi], ref, compute_mode=EXACT)  # (B, 1, rows, A)
    pair = mask[:, None, lo:hi, None] & mask[:, None, None, :] & (d_true < cutoff[:, None, None, :])
    pair[..., torch.arange(hi - lo), torch.arange(lo, hi)] = False
    delta = (torch.cdist(pred[:, :, lo:hi], pred, compute_mode=EXACT) - d_true).abs()  # (B, D, rows, A)
    eps = sum(torch.sigmoid(t - delta) for t in THRESHOLDS) / len(THRESHOLDS)
    w = pair.float()
    return (eps * w).sum((-1, -2)), w.sum((-1, -2))


def _smooth_lddt_sparse(pred: Tensor, true: Tensor, mask: Tensor, cutoff: Tensor) -> Tensor:
    """:func:`smooth_lddt_loss` over the listed pairs within the radius (data-dependent P)."""
    l_idx, m_idx, valid = neighbour_pairs(true[:, 0], mask, cutoff)
    delta = (pair_distances(pred.float(), l_idx, m_idx) - pair_distances(true.float(), l_idx, m_idx)).abs()
    eps = sum(torch.sigmoid(t - delta) for t in THRESHOLDS) / len(THRESHOLDS)
    w = valid[:, None].float()
    return 1.0 - (eps * w).sum(-1) / w.sum(-1).clamp(min=1.0)


def smooth_lddt_loss_dense(pred: Tensor, true: Tensor, mask: Tensor, is_nucleotide: Tensor) -> Tensor:
    """The dense (B, D, A, A) form of :func:`smooth_lddt_loss`, kept as its test oracle."""
    cutoff = torch.where(is_nucleotide, 30.0, 15.0)[:, None, None, :]  # radius of atom m
    d_true = torch.cdist(true, true, compute_mode=EXACT)
    pair = mask[:, None, :, None] & mask[:, None, None, :] & (d_true < cutoff)
    pair = (pair & ~torch.eye(true.shape[-2], dtype=torch.bool, device=true.device)).float()
    delta = (torch.cdist(pred, pred, compute_mode=EXACT) - d_true).abs()
    eps = sum(torch.sigmoid(t - delta) for t in THRESHOLDS) / len(THRESHOLDS)
    return 1.0 - (eps * pair).sum((-1, -2)) / pair.sum((-1, -2)).clamp(min=1.0)
