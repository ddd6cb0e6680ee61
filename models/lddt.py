"""All-atom lDDT in pure torch (validation metric and the pLDDT target), and AF3's smooth lDDT loss."""

from __future__ import annotations

import torch
from torch import Tensor

from models.policy import checkpointed

THRESHOLDS = (0.5, 1.0, 2.0, 4.0)  # Å, lDDT's distance-difference thresholds (Mariani et al. 2013)
INCLUSION_RADIUS = 15.0  # Å, reference distance below which a pair is scored
NUCLEOTIDE_INCLUSION_RADIUS = 30.0  # Å, AF3's radius for pairs whose partner atom is a DNA/RNA atom
EXACT = "donot_use_mm_for_euclid_dist"  # cdist by differences: the matmul form errs by ~1e-3 Å at 100 Å


def atom_radius(cutoff: float | Tensor, n_batch: int, n_atoms: int, device: torch.device) -> Tensor:
    """(B, A) float64 inclusion radius per atom from a float or a per-atom (B, A) tensor."""
    if torch.is_tensor(cutoff):
        return cutoff.to(device, torch.float64).expand(n_batch, n_atoms)
    return torch.full((n_batch, n_atoms), float(cutoff), dtype=torch.float64, device=device)


def lddt(
    pred: Tensor,
    true: Tensor,
    mask: Tensor,
    *,
    cutoff: float | Tensor = INCLUSION_RADIUS,
    atom_to_token: Tensor | None = None,
    exclude: Tensor | None = None,
    pred_mask: Tensor | None = None,
    per_atom: bool = False,
    empty: float = float("nan"),
    thresholds: tuple[float, ...] = THRESHOLDS,
    chunk_size: int = 1024,
) -> Tensor:
    """All-atom lDDT of pred against true coordinates already in atom correspondence: the one torch lDDT
    (``analysis.metrics.lddt.lddt_torch`` adds side-chain symmetry resolution around it).

    Args:
        pred, true: (B, A, 3) or (A, 3) Å.
        mask: (B, A) or (A,) bool, atoms real in the reference; only they form pairs (pred's positions of other
            atoms are never read).
        cutoff: inclusion radius in Å, a float or a per-atom (B, A)/(A,) tensor; a pair (l, m) is scored when
            the reference distance is below the radius of its first atom l.
        atom_to_token: (B, A)/(A,) long; pairs inside one token are excluded (residues for polymers, so the
            "intra-residue pairs excluded" rule). ``exclude``: (B, A, A)/(A, A) bool, further pairs to drop.
            Without either only l == m is excluded.
        pred_mask: (B, A)/(A,) bool, atoms the prediction has; a pair with a missing atom counts as not
            preserved.
        per_atom: (B, A) per-atom lDDT (over pairs whose first atom is l) instead of (B,) pooled over pairs.
        empty: the value where no pair exists (pooled, or an atom without partners). NaN by default: the score
            is undefined there.
        chunk_size: rows of the A x A distance matrix processed at once (memory B·chunk·A values).

    Computed in float64 over the ~1-5% of pairs inside the radius; returned in pred's dtype, without the batch
    dim for (A, 3) input."""
    unbatched = pred.dim() == 2
    if unbatched:
        pred, true, mask = pred[None], true[None], mask[None]
        atom_to_token = None if atom_to_token is None else atom_to_token[None]
        exclude = None if exclude is None else exclude[None]
        pred_mask = None if pred_mask is None else pred_mask[None]
        if torch.is_tensor(cutoff) and cutoff.dim() == 1:
            cutoff = cutoff[None]
    if pred.shape != true.shape or pred.dim() != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} must both be (B, A, 3)")
    n_batch, n_atoms, _ = pred.shape
    out_dtype = pred.dtype if pred.is_floating_point() else torch.float32
    pred, true, mask = pred.double(), true.double(), mask.bool()
    radius = atom_radius(cutoff, n_batch, n_atoms, pred.device)
    preserved_sum = torch.zeros(n_batch, n_atoms, dtype=torch.float64, device=pred.device)
    pair_count = torch.zeros(n_batch, n_atoms, dtype=torch.float64, device=pred.device)
    for start in range(0, n_atoms, chunk_size):
        rows = slice(start, min(start + chunk_size, n_atoms))
        # Exact Euclidean distances (the matmul shortcut loses ~1e-4 Å, enough to flip threshold tests).
        d_true = torch.cdist(true[:, rows], true, compute_mode=EXACT)
        pairs = (d_true < radius[:, rows, None]) & mask[:, rows, None] & mask[:, None, :]
        # Only the pairs inside the radius are scored, never the dense matrix.
        b, i, j = pairs.nonzero(as_tuple=True)
        ref_d = d_true[b, i, j]
        i = i + start
        keep = i != j
        if atom_to_token is not None:
            keep &= atom_to_token[b, i] != atom_to_token[b, j]
        if exclude is not None:
            keep &= ~exclude[b, i, j]
        b, i, j, ref_d = b[keep], i[keep], j[keep], ref_d[keep]
        deviation = ((pred[b, i] - pred[b, j]).norm(dim=-1) - ref_d).abs()
        score = torch.zeros_like(deviation)
        for threshold in thresholds:
            score += deviation < threshold
        score /= len(thresholds)
        if pred_mask is not None:
            score = score * (pred_mask[b, i] & pred_mask[b, j])
        preserved_sum.index_put_((b, i), score, accumulate=True)
        pair_count.index_put_((b, i), torch.ones_like(score), accumulate=True)
    if per_atom:
        out = (preserved_sum / pair_count).where(pair_count > 0, empty)
    else:
        total = pair_count.sum(-1)
        out = (preserved_sum.sum(-1) / total).where(total > 0, empty)
    out = out.to(out_dtype)
    return out[0] if unbatched else out


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
    cutoff = torch.where(is_nucleotide, NUCLEOTIDE_INCLUSION_RADIUS, INCLUSION_RADIUS)
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
    cutoff = torch.where(is_nucleotide, NUCLEOTIDE_INCLUSION_RADIUS, INCLUSION_RADIUS)[:, None, None, :]  # of m
    d_true = torch.cdist(true, true, compute_mode=EXACT)
    pair = mask[:, None, :, None] & mask[:, None, None, :] & (d_true < cutoff)
    pair = (pair & ~torch.eye(true.shape[-2], dtype=torch.bool, device=true.device)).float()
    delta = (torch.cdist(pred, pred, compute_mode=EXACT) - d_true).abs()
    eps = sum(torch.sigmoid(t - delta) for t in THRESHOLDS) / len(THRESHOLDS)
    return 1.0 - (eps * pair).sum((-1, -2)) / pair.sum((-1, -2)).clamp(min=1.0)
