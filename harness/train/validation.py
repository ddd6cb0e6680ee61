"""The validation estimator: deterministic metrics with a known, small noise on a fixed validation set.

Every random choice of a validation is fixed by ``train.val_seed`` and the example's entry id, and by nothing
else — not the global RNG, not the step, not the run's seed, not the DDP rank or world size:

- the data: crop and MSA rows (``StructureDataModule``'s val set is drawn with ``val_seed``);
- the noise: rotations, translations and Gaussian noise of every diffusion copy, and the sampler's noise.

So the same checkpoint always scores the same numbers, two runs of a sweep are scored on identical draws
(common random numbers: differences between configurations carry no draw-to-draw noise of their own), and
a curve moves only because the weights moved.

Metrics per validation (``harness.tracking.names``):

- ``VAL_DISTOGRAM_CE``: distogram cross-entropy (deterministic given the weights).
- ``VAL_LOSS_DIFFUSION``: the diffusion loss (aligned MSE + α_bond·bond + smooth-lDDT loss, AF3's terms with
  the weights of the training stage in effect; ``VAL_LOSS_BOND`` the unweighted bond term) as its
  expectation over the training noise distribution σ = σ_data·exp(−1.2 + 1.5·ξ), ξ ~ N(0, 1), computed by
  Gauss–Hermite quadrature in ξ (:func:`sigma_quadrature`) instead of a few random σ: the random-σ estimate's
  variance is dominated by the (σ²+σ_d²)/(σσ_d)² weight at small σ (BENCHMARKS.md, "Validation set size").
  Per node: ``VAL_LOSS_DIFFUSION_AT_SIGMA``; the grid: param ``PARAM_VAL_SIGMAS``.
- ``VAL_SMOOTH_LDDT``: smooth lDDT (a score, 1 − loss) with the same quadrature.
- ``VAL_LOSS``: the training loss's weighting of those terms, α_diff·diffusion + α_disto·distogram CE.
- ``VAL_LDDT`` (every ``val_lddt_every``-th validation): all-atom lDDT of ``val_samples`` sampled structures.
- ``VAL_LOSS_NOISE``, ``VAL_LOSS_DIFFUSION_NOISE``, ``VAL_SMOOTH_LDDT_NOISE``, ``VAL_LDDT_NOISE``: the
  estimator's own noise, the standard deviation of the metric over independent noise draws at these weights,
  estimated from the spread of the draws the validation already made (:func:`noise_of_mean`; no extra model
  passes). The distogram CE has none: it depends on the weights and the fixed crop only.
  ``tests/harness/train/test_validation.py`` checks them against a brute-force re-evaluation with many
  independent seeds.
- ``BASELINE_LDDT_GEOMETRIC`` (step 0): :func:`helix_baseline_coords` scored on the same examples.

Validation set size: all of the starter split's 8 val structures, each cropped once to ``data.val_max_tokens``
(``train.val_batches: null``); on the paper profile ``data.val_max_tokens``, ``train.val_batches`` and
``train.val_copies`` size a larger set, sharded across ranks. Why 8 suffice for comparing configurations, and
what a validation costs: ``BENCHMARKS.md``, "Validation estimator" and "Validation set size".
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from harness.tracking import names

# AF3 §3.7.1: σ = σ_data · exp(P_mean + P_std · N(0, 1)).
P_MEAN, P_STD = -1.2, 1.5


@dataclass(frozen=True)
class SigmaQuadrature:
    """Nodes ``sigmas`` (K,) Å and weights (K,) summing to 1, so that Σ w_k f(σ_k) ≈ E_σ[f(σ)]."""

    sigmas: np.ndarray
    weights: np.ndarray


def sigma_quadrature(n_nodes: int, sigma_data: float, p_mean: float = P_MEAN, p_std: float = P_STD) -> SigmaQuadrature:
    """Gauss–Hermite (probabilists') quadrature of the log-normal training σ distribution.

    With ξ_k, h_k the nodes and weights of ∫ f(ξ) e^{−ξ²/2} dξ, σ_k = σ_data·exp(p_mean + p_std·ξ_k) and
    w_k = h_k / Σh. Exact for f polynomial in ξ up to degree 2K−1; for the moments E[σ^m] (smooth in ξ) the
    error falls fast with K (tested).
    """
    xi, h = np.polynomial.hermite_e.hermegauss(n_nodes)
    return SigmaQuadrature(sigma_data * np.exp(p_mean + p_std * xi), h / h.sum())


def validation_schedule(max_steps: int, every: int | None, log_points: int, at_start: bool = True) -> list[int]:
    """Steps (sorted, unique) at which to validate: 0 (if ``at_start``), every ``every``-th step, ``log_points``
    log-spaced steps in [1, max_steps], and ``max_steps``."""
    steps = {0, max_steps} if at_start else {max_steps}
    if every:
        steps |= set(range(every, max_steps + 1, every))
    if log_points:
        steps |= {int(round(s)) for s in np.geomspace(1, max_steps, log_points)}
    return sorted(steps)


def lddt_steps(schedule: list[int], every_n: int) -> set[int]:
    """The scheduled steps that also sample structures: every ``every_n``-th, the first and the last."""
    return set(schedule[::every_n]) | {schedule[0], schedule[-1]}


def noise_of_mean(draws: Tensor, weights: Tensor) -> Tensor:
    """Variance over draws of ``Σ_k weights[k]·mean_r draws[..., k, r]``, estimated from the draws themselves.

    draws (..., K, R): R independent draws at each of K nodes (R ≥ 2). Unbiased: Σ_k w_k² s²_k / R with s²_k
    the sample variance over r. Leading dims (examples) are summed, so a mean over E examples has variance
    ``noise_of_mean(...) / E²``.
    """
    r = draws.shape[-1]
    if r < 2:
        return torch.full(draws.shape[:-2], float("nan"), dtype=torch.float64).sum()
    s2 = draws.double().var(dim=-1, unbiased=True)  # (..., K)
    return (weights.double() ** 2 * s2 / r).sum()


def draw_seed(val_seed: int, entry_id: str, salt: int = 0) -> int:
    """The noise seed of one validation example: fixed by the val seed and the entry, not by rank or order."""
    return (zlib.crc32(entry_id.encode()) + 1_000_003 * val_seed + 7_919 * salt) & 0x7FFF_FFFF


def helix_baseline_coords(batch: dict[str, Tensor]) -> Tensor:
    """A trivial prediction (B, A, 3) Å: every chain an ideal α-helix, every token's reference conformer
    (``ref_pos``, unrotated) placed at its helix position.

    Token i of a chain sits at (2.3·cos 100°i, 2.3·sin 100°i, 1.5·i) Å (the Cα trace of an α-helix); chains
    are set side by side 20 Å apart. It knows the sequence, the chain lengths and the ideal local geometry of
    each residue and nothing else: a prediction at this score has learnt nothing about the fold.
    """
    ri = batch["residue_index"].float()
    asym = batch["asym_id"]
    angle = torch.deg2rad(torch.tensor(100.0)) * ri
    chain_rank = torch.zeros_like(ri)
    for b in range(asym.shape[0]):
        ids = torch.unique(asym[b][batch["token_mask"][b]])
        for k, a in enumerate(ids.tolist()):
            chain_rank[b][asym[b] == a] = float(k)
    centre = torch.stack([2.3 * torch.cos(angle) + 20.0 * chain_rank, 2.3 * torch.sin(angle), 1.5 * ri], dim=-1)
    atom_centre = torch.gather(centre, 1, batch["atom_to_token"][..., None].expand(-1, -1, 3))
    ref = batch["ref_pos"].float()
    # Each token's conformer centred on its own mean, so the token sits at its helix point.
    tok_sum = torch.zeros_like(centre).scatter_add_(1, batch["atom_to_token"][..., None].expand(-1, -1, 3),
                                                    ref * batch["atom_mask"][..., None])
    tok_n = torch.zeros_like(ri).scatter_add_(1, batch["atom_to_token"], batch["atom_mask"].float())
    tok_mean = tok_sum / tok_n.clamp(min=1.0)[..., None]
    ref_centred = ref - torch.gather(tok_mean, 1, batch["atom_to_token"][..., None].expand(-1, -1, 3))
    return (atom_centre + ref_centred) * batch["atom_mask"][..., None]


def all_atom_lddt(coords: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """(B,) all-atom lDDT of coords (B, A, 3) against the truth, intra-token pairs excluded."""
    from analysis.metrics.lddt import lddt_torch

    mask = batch["atom_mask"] & batch["gt_atom_mask"]
    # Symmetric side-chain atom names resolved per residue, as the structure-level lDDT does.
    out = lddt_torch(coords.float(), batch["gt_coords"].float(), mask, atom_to_token=batch["atom_to_token"],
                     restype=batch.get("restype"), atom_name_chars=batch.get("ref_atom_name_chars"))
    return torch.nan_to_num(torch.as_tensor(out, dtype=torch.float32), nan=0.0)


# The sums one validation accumulates over examples (and all-reduces over ranks), in this order.
# Contact precision at these minimum sequence separations (CASP: 24 long range, 12 medium and long range).
CONTACT_SEPARATIONS = (24, 12)
SCALARS = ("n", "distogram_ce", "loss", "loss_var", "bond", "n_lddt", "lddt", "lddt_var", "baseline_lddt",
           "tokens", "diffusion_var", "smooth_lddt_var",
           *(f"{stat}_{sep}" for sep in CONTACT_SEPARATIONS for stat in ("n_contact", "contact", "contact_sq")))
CONTACT_NAMES = {24: (names.VAL_CONTACT_PRECISION, names.VAL_CONTACT_PRECISION_NOISE),
                 12: (names.VAL_CONTACT_PRECISION_SEP12, names.VAL_CONTACT_PRECISION_SEP12_NOISE)}


def contact_precisions(logits: Tensor, batch: dict[str, Tensor]) -> dict[int, float]:
    """Top-L/5 contact precision of one example (batch of 1) from its distogram logits (1, N, N, bins), per
    minimum separation in ``CONTACT_SEPARATIONS`` (NaN where the crop has no candidate pair). Residues: protein
    tokens whose distogram atom (Cβ, Cα for glycine) is resolved; L = their number in the crop."""
    from analysis.metrics.contacts import contact_candidates, contact_probability, top_l_precision
    from models.modules.heads import distogram_edges

    atom = batch["token_disto_atom"][0]
    x = batch["gt_coords"][0].float()[atom]
    usable = batch["token_mask"][0] & batch["is_protein"][0] & batch["gt_atom_mask"][0][atom]
    d_true = torch.cdist(x, x)
    p = contact_probability(logits[0], distogram_edges(logits.shape[-1], device=logits.device))
    n_res = int(usable.sum())
    return {sep: top_l_precision(p, d_true, contact_candidates(batch["residue_index"][0], batch["asym_id"][0],
                                                                usable, sep), n_residues=n_res)
            for sep in CONTACT_SEPARATIONS}


class ValidationEstimator:
    """Scores a model on fixed validation examples. ``example_sums`` for one example (batch of 1), then
    ``metrics`` on the (rank-reduced) sums.

    model: ``models.model.SeedFold``; loss_weights: AF3_WEIGHTS-like {"diffusion", "distogram"}.
    """

    def __init__(self, model, *, n_cycles: int, n_sigma_nodes: int, n_copies: int, n_samples: int,
                 sampling_steps: int, val_seed: int, loss_weights: dict[str, float]):
        self.model = model
        self.n_cycles = n_cycles
        self.sigma_data = model.config.sigma_data
        self.quadrature = sigma_quadrature(n_sigma_nodes, self.sigma_data)
        self.n_copies = n_copies
        self.n_samples = n_samples
        self.sampling_steps = sampling_steps
        self.val_seed = val_seed
        self.w_diff = float(loss_weights["diffusion"])
        self.w_disto = float(loss_weights["distogram"])
        self.w_bond = float(loss_weights.get("bond", 1.0))

    @property
    def n_nodes(self) -> int:
        return len(self.quadrature.sigmas)

    def zero_sums(self, device) -> Tensor:
        """(len(SCALARS) + 2K,) float64: the scalars, then per-node diffusion loss and smooth lDDT sums."""
        return torch.zeros(len(SCALARS) + 2 * self.n_nodes, dtype=torch.float64, device=device)

    @torch.no_grad()
    def example_sums(self, batch: dict, *, with_lddt: bool, with_baseline: bool, salt: int = 0) -> Tensor:
        """This example's contribution to the sums (see ``zero_sums``). ``salt`` != 0 draws independent noise
        (for measuring the estimator's noise by brute force); 0 is the fixed draw every validation uses."""
        from models.lddt import smooth_lddt_loss
        from models.losses import bond_loss, distogram_loss, mse_loss
        from models.sampling import centre_random_augmentation

        if batch["token_mask"].shape[0] != 1:
            raise ValueError("the validation estimator takes one example per batch (seeds are per example)")
        device = batch["token_mask"].device
        model = self.model
        g = torch.Generator(device=device).manual_seed(draw_seed(self.val_seed, batch["entry_id"][0], salt))
        trunk = model.trunk(batch, n_cycles=self.n_cycles)
        s_inputs, s, z = trunk["s_inputs"], trunk["s"], trunk["z"]
        logits = model.distogram_head(z).float()
        disto = distogram_loss(logits, batch)
        contacts = contact_precisions(logits, batch)

        k, r = self.n_nodes, self.n_copies
        mask = batch["gt_atom_mask"] & batch["atom_mask"]
        x_gt = batch["gt_coords"].float()[:, None].expand(-1, k * r, -1, -1)
        x_aug = centre_random_augmentation(x_gt, mask, generator=g)
        sigma = torch.as_tensor(self.quadrature.sigmas, dtype=torch.float32, device=device)
        sigma = sigma.repeat_interleave(r)[None]  # (1, K·R): copies k·R .. k·R + R − 1 at node k
        noise = torch.randn(x_aug.shape, generator=g, device=device) * sigma[..., None, None]
        x_noisy = x_aug + noise * batch["atom_mask"][:, None, :, None]
        x_den = model.diffusion_module(x_noisy, sigma, batch, s_inputs, s, z).float()

        from models.losses import atom_flags

        nucleotide = atom_flags(batch, "is_dna") | atom_flags(batch, "is_rna")
        slddt_loss = smooth_lddt_loss(x_den, x_aug, mask, nucleotide)[0]  # (K·R,)
        mse = torch.stack([
            mse_loss(x_den[:, i : i + 1], x_aug[:, i : i + 1], sigma[:, i : i + 1], batch, self.sigma_data)
            for i in range(k * r)
        ])
        bond = torch.stack([bond_loss(x_den[:, i : i + 1], x_aug[:, i : i + 1], batch, sigma=sigma[:, i : i + 1],
                                      sigma_data=self.sigma_data) for i in range(k * r)])
        per_copy = (mse + self.w_bond * bond + slddt_loss).double().reshape(k, r)
        w = torch.as_tensor(self.quadrature.weights, dtype=torch.float64, device=device)
        diffusion = (w * per_copy.mean(-1)).sum()
        loss = self.w_diff * diffusion + self.w_disto * disto.double()
        loss_var = noise_of_mean(per_copy, self.w_diff * w)
        slddt = 1.0 - slddt_loss.double().reshape(k, r)  # smooth lDDT (a score) per node and copy

        sums = self.zero_sums(device)
        at = {name: i for i, name in enumerate(SCALARS)}
        sums[at["n"]] = 1.0
        sums[at["distogram_ce"]] = float(disto)
        sums[at["loss"]] = loss
        sums[at["loss_var"]] = loss_var
        sums[at["diffusion_var"]] = noise_of_mean(per_copy, w)
        sums[at["smooth_lddt_var"]] = noise_of_mean(slddt, w)
        sums[at["bond"]] = (w * bond.double().reshape(k, r).mean(-1)).sum()
        sums[at["tokens"]] = float(batch["token_mask"].sum())
        for sep, value in contacts.items():
            if not math.isnan(value):
                sums[at[f"n_contact_{sep}"]] = 1.0
                sums[at[f"contact_{sep}"]] = value
                sums[at[f"contact_sq_{sep}"]] = value * value
        # This example's own values, for the per-structure record (``Validator.per_example``).
        self.last_example = {names.VAL_LOSS: float(loss), names.VAL_DISTOGRAM_CE: float(disto),
                             names.VAL_SMOOTH_LDDT: float((w * slddt.mean(-1)).sum())}
        self.last_example |= {CONTACT_NAMES[sep][0]: value for sep, value in contacts.items()}
        if with_lddt:
            # The model's own sampler, on the trunk computed above (one trunk pass per example).
            coords = model._sample_coords(batch, s_inputs, s, z, n_samples=self.n_samples,
                                          n_steps=self.sampling_steps, generator=g)
            per_sample = torch.stack([all_atom_lddt(coords[:, i], batch)[0] for i in range(self.n_samples)])
            sums[at["n_lddt"]] = 1.0
            sums[at["lddt"]] = per_sample.double().mean()
            sums[at["lddt_var"]] = noise_of_mean(per_sample[None, :], torch.ones(1, device=device))
            self.last_example[names.VAL_LDDT] = float(per_sample.double().mean())
        if with_baseline:
            sums[at["baseline_lddt"]] = float(all_atom_lddt(helix_baseline_coords(batch), batch)[0])
        base = len(SCALARS)
        sums[base : base + k] = per_copy.mean(-1)
        sums[base + k :] = slddt.mean(-1)
        return sums

    def metrics(self, sums: Tensor, *, with_lddt: bool, with_baseline: bool) -> dict[str, float]:
        """Means over examples, and the estimator's noise as a standard deviation (absolute units)."""
        sums = sums.double().cpu()
        at = {name: i for i, name in enumerate(SCALARS)}
        n = max(float(sums[at["n"]]), 1.0)
        k, base = self.n_nodes, len(SCALARS)
        w = torch.as_tensor(self.quadrature.weights, dtype=torch.float64)
        per_node = sums[base : base + k] / n
        out = {
            names.VAL_LOSS: float(sums[at["loss"]]) / n,
            names.VAL_LOSS_NOISE: _std(sums[at["loss_var"]]) / n,
            names.VAL_LOSS_DIFFUSION_NOISE: _std(sums[at["diffusion_var"]]) / n,
            names.VAL_SMOOTH_LDDT_NOISE: _std(sums[at["smooth_lddt_var"]]) / n,
            names.VAL_DISTOGRAM_CE: float(sums[at["distogram_ce"]]) / n,
            names.VAL_LOSS_DIFFUSION: float((w * per_node).sum()),
            names.VAL_SMOOTH_LDDT: float((w * sums[base + k :]).sum()) / n,
            names.VAL_LOSS_BOND: float(sums[at["bond"]]) / n,  # σ-weighted, before α_bond: what α_bond = 1 adds
        }
        out |= {names.VAL_LOSS_DIFFUSION_AT_SIGMA.format(i=i): float(v) for i, v in enumerate(per_node)}
        for sep, (key, noise_key) in CONTACT_NAMES.items():
            n_c = float(sums[at[f"n_contact_{sep}"]])
            if n_c >= 1:
                mean = float(sums[at[f"contact_{sep}"]]) / n_c
                out[key] = mean
                # No draw noise (deterministic given the weights): its uncertainty is the spread over structures,
                # the standard error of the mean over the examples that have candidate pairs.
                if n_c >= 2:
                    var = (float(sums[at[f"contact_sq_{sep}"]]) / n_c - mean**2) * n_c / (n_c - 1)
                    out[noise_key] = math.sqrt(max(var, 0.0) / n_c)
        if with_lddt:
            n_l = max(float(sums[at["n_lddt"]]), 1.0)
            out[names.VAL_LDDT] = float(sums[at["lddt"]]) / n_l
            out[names.VAL_LDDT_NOISE] = _std(sums[at["lddt_var"]]) / n_l
        if with_baseline:
            out[names.BASELINE_LDDT_GEOMETRIC] = float(sums[at["baseline_lddt"]]) / n
        return out

    def tokens(self, sums: Tensor) -> tuple[int, int]:
        """(examples, tokens) the sums cover."""
        at = {name: i for i, name in enumerate(SCALARS)}
        return int(sums[at["n"]]), int(sums[at["tokens"]])


def train_probe_picks(n_train: int, n_val: int) -> list[int]:
    """Indices of the train probe: ``n_val`` training examples spread evenly over the ``n_train`` of the split
    (fixed crops, scored like the validation set; their gap to it is what a run memorised)."""
    if n_train <= 0 or n_val <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, n_train - 1, min(n_val, n_train)).round()})


def _std(variance: Tensor) -> float:
    return math.sqrt(max(float(variance), 0.0))


def shard(val_set, limit: int | None, rank: int, world: int):
    """This rank's part of the fixed set: examples ``rank, rank + world, ...`` of the first ``limit``.

    Each example's draws depend only on its entry id, so the reduced sums do not depend on ``world``.
    """
    from torch.utils.data import DataLoader, Subset

    from harness.data.collate import collate

    if val_set is None:
        return []
    n = len(val_set) if limit is None else min(limit, len(val_set))
    return DataLoader(Subset(val_set, list(range(rank, n, world))), batch_size=1, collate_fn=collate)


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}


class Validator:
    """The estimator configured from a ``TrainConfig``, and the loop that sums it over examples.

    ``loss_weights``: the training loss's weights in effect (``SeedFoldModule.loss_weights``: diffusion,
    distogram and the stage's α_bond); default AF3's stage-1 weights (bond off)."""

    def __init__(self, model, train_config, loss_weights: dict[str, float] | None = None):
        from models.losses import AF3_WEIGHTS

        t = train_config
        self.estimator = ValidationEstimator(
            model, n_cycles=t.max_cycles, n_sigma_nodes=t.val_sigma_nodes, n_copies=t.val_copies,
            n_samples=t.val_samples, sampling_steps=t.val_sampling_steps, val_seed=t.val_seed,
            loss_weights=loss_weights or (AF3_WEIGHTS | {"bond": 0.0}),
        )

    def sums(self, examples, device, *, with_lddt: bool, with_baseline: bool, salt: int = 0) -> Tensor:
        """The estimator's sums over ``examples``; each example's own values land in ``per_example``
        (entry id → {metric: value}) for the per-structure record."""
        total = self.estimator.zero_sums(device)
        self.per_example: dict[str, dict[str, float]] = {}
        for batch in examples:
            total += self.estimator.example_sums(to_device(batch, device), with_lddt=with_lddt,
                                                 with_baseline=with_baseline, salt=salt)
            self.per_example[str(batch["entry_id"][0])] = dict(self.estimator.last_example)
        return total
