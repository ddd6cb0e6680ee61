"""Does a trained confidence head know where its own predictions are right? pLDDT vs true lDDT.

Trains a miniature in the documented confidence stage (``docs/examples/confidence_stage.yaml``: the confidence
loss on, ``train.confidence_loss: true``, and the head's pair readout unless ``--no-pair-readout``) on the
bundled starter set, then samples every validation structure and correlates the head's per-token
pLDDT with the true per-token lDDT of the same sample (the head's own target, ``models.losses.plddt_target``:
lDDT of each atom against the token centre atoms within 15 Å / 30 Å, averaged over the token's atoms). The same
trunk with a freshly initialised head is the baseline (should give ~0). Intervals: 95% bootstrap over
structures (tokens of one structure are not independent), 2000 resamples.

    PYTHONPATH=$PWD python benchmarks/confidence_calibration.py --steps 300 --out /tmp/calib
"""

from __future__ import annotations

import argparse
import copy
import resource
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy import stats

from harness.config import RunConfig, load_run_config
from harness.data.datamodule import StructureDataModule
from harness.predict import load_model
from harness.train.run import train_run
from models.init import apply_init
from models.losses import plddt_target

STAGE = Path(__file__).parents[1] / "docs/examples/confidence_stage.yaml"


def run_config(out: Path, steps: int, seed: int, pair_readout: bool = True) -> RunConfig:
    """The documented confidence stage (``docs/examples/confidence_stage.yaml``) with this run's steps, seed and
    readout, on one CPU device, written under ``out``."""
    return load_run_config(STAGE, {
        "seed": seed, "runs_dir": str(out / "runs"), "model.confidence_pair_readout": pair_readout,
        "train.max_steps": steps, "train.val_every": steps, "train.checkpoint_every": steps,
        "train.accelerator": "cpu", "train.devices": 1,
    })


def per_token(values: torch.Tensor, mask: torch.Tensor, atom_to_token: torch.Tensor, n_tokens: int) -> np.ndarray:
    """Mean of per-atom ``values`` (A,) over each token's atoms in ``mask``; NaN for tokens without any."""
    total = torch.zeros(n_tokens).scatter_add(0, atom_to_token, values * mask)
    count = torch.zeros(n_tokens).scatter_add(0, atom_to_token, mask.float())
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan).numpy()


def examples(config: RunConfig, tokens: int, crops: int, seed: int):
    """(structure index, batch) for ``crops`` fixed spatial crops of ``tokens`` tokens of every validation
    structure (crop seeds from the entry id, so every head and every rerun sees the same crops)."""
    from harness.data.collate import collate

    data = config.data.model_copy(update={"val_max_tokens": tokens})
    dm = StructureDataModule(data, seed=config.seed)
    dm.setup("validate")
    val = dm.val_set
    for i in range(len(val)):
        entry = val.entries[i]["entry_id"]
        for c in range(crops):
            draw = (zlib.crc32(entry.encode()) + 7_919 * (seed + 1) + 104_729 * c) & 0x7FFFFFFF
            yield i, collate([val.get(i, draw)])


def distogram_expected_lddt(distogram_logits: torch.Tensor, coords: torch.Tensor, batch: dict, n: int) -> torch.Tensor:
    """A reference that needs no confidence head: each token's lDDT expected under the trunk's own distogram.

    For tokens i, j (distogram atoms, CB / CA for GLY) the distogram gives P(d*_ij in bin k); the sample gives
    d_ij. Expected lDDT_i = sum_j sum_k P_ijk [c_k < 15 Å] score(|d_ij - c_k|) / sum_j sum_k P_ijk [c_k < 15 Å],
    score the mean of the four lDDT thresholds, c_k the bin centres. (S, n) for coords (1, S, A, 3)."""
    from models.lddt import THRESHOLDS
    from models.modules.heads import distogram_edges

    probs = torch.softmax(distogram_logits[0, :n, :n].float(), -1)  # (n, n, bins)
    edges = distogram_edges(probs.shape[-1])
    width = float(edges[1] - edges[0])
    centres = torch.cat([edges[:1] - width / 2, (edges[1:] + edges[:-1]) / 2, edges[-1:] + width / 2])
    rep = torch.gather(coords[0], 1, batch["token_disto_atom"][0, None, :n, None].expand(coords.shape[1], -1, 3))
    d = torch.cdist(rep, rep)[..., None]  # (S, n, n, 1)
    score = sum(((d - centres).abs() < t).float() for t in THRESHOLDS) / len(THRESHOLDS)
    near = probs * (centres < 15.0) * ~torch.eye(n, dtype=torch.bool)[..., None]  # (n, n, bins)
    return (near * score).sum((-1, -2)) / near.sum((-1, -2)).clamp(min=1e-6)


@torch.no_grad()
def collect(model, heads, batches, n_cycles: int, n_samples: int, seed: int) -> dict:
    """Per head, per structure: (pLDDT per token in [0, 1], true lDDT per token) over its crops and samples.

    The trunk and the samples are the trained model's, made once per crop; each head in ``heads`` (the
    trained one first) scores the same samples, so the heads differ by their weights only. Also: each head's
    per-atom cross-entropy and the constant-histogram floor; how much each head's pLDDT of a token moves
    between samples of the same crop against how much the true lDDT moves (0 = the head ignores the sample's
    coordinates); and the groups of :func:`distogram_expected_lddt`, the head-free reference."""
    from models.confidence_metrics import summarize_confidence

    out: list[dict[int, list[tuple[np.ndarray, np.ndarray]]]] = [{} for _ in heads]
    reference: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    n_bins = model.config.n_plddt_bins
    ce_sums, bin_counts = np.zeros(len(heads)), np.zeros(n_bins)
    sample_var, true_var = np.zeros(len(heads)), 0.0
    for k_batch, (structure, batch) in enumerate(batches):
        batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        g = torch.Generator().manual_seed(seed + k_batch)
        trunk = model.trunk(batch, n_cycles=n_cycles)
        s_inputs, s, z = trunk["s_inputs"], trunk["s"], trunk["z"]
        coords = model._sample_coords(batch, s_inputs, s, z, n_samples=n_samples, n_steps=20, generator=g)
        target, mask = plddt_target(coords, batch)
        n = int(batch["token_mask"].sum())
        a2t = batch["atom_to_token"][0]
        t_ks = np.stack([per_token(target[0, k], mask[0], a2t, n)[:n] for k in range(n_samples)])  # (S, n)
        t = t_ks.reshape(-1)
        scored = np.isfinite(t_ks).all(0)
        true_var += t_ks[:, scored].var(0).sum()
        e = distogram_expected_lddt(model.distogram_head(z), coords, batch, n).numpy().reshape(-1)
        ok_ref = np.isfinite(t)
        reference.setdefault(structure, []).append((e[ok_ref], t[ok_ref]))
        bins = (target * n_bins).long().clamp(max=n_bins - 1)  # (1, S, A), the head's target bins
        atoms = mask[:, None].expand_as(bins)
        bin_counts += np.bincount(bins[atoms].numpy(), minlength=n_bins)
        for h, head in enumerate(heads):
            logits = head(batch, s_inputs, s, z, coords)
            logp = torch.log_softmax(logits["plddt_logits"].float(), -1)
            ce_sums[h] -= float(torch.gather(logp, -1, bins[..., None])[..., 0][atoms].sum())
            plddt = summarize_confidence(logits, batch, model.config, coords)["plddt"]
            p_ks = np.stack([per_token(plddt[0, k] / 100.0, mask[0], a2t, n)[:n] for k in range(n_samples)])
            sample_var[h] += p_ks[:, scored].var(0).sum()
            p = p_ks.reshape(-1)
            ok = np.isfinite(p) & np.isfinite(t)
            out[h].setdefault(structure, []).append((p[ok], t[ok]))

    def grouped(per_structure):
        return [(np.concatenate([x[0] for x in parts]), np.concatenate([x[1] for x in parts]))
                for parts in per_structure.values()]

    # Per-atom cross-entropy of each head on these samples, and the floor a constant prediction reaches: the
    # entropy of the targets' own histogram (a head that beats it has learnt something per atom, not a level).
    freq = bin_counts / bin_counts.sum()
    floor = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
    return {"groups": [grouped(per_structure) for per_structure in out], "ce": ce_sums / bin_counts.sum(),
            "ce_floor": floor, "sample_sensitivity": np.sqrt(sample_var / max(true_var, 1e-12)),
            "reference": grouped(reference)}


def correlations(groups, n_boot: int = 2000, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Pooled Pearson and Spearman r over all tokens, and the mean within-structure Pearson r (which ignores
    differences between structures), each with a 95% bootstrap interval resampling structures."""
    rng = np.random.default_rng(seed)
    within = np.array([stats.pearsonr(p, t)[0] if len(p) > 2 and p.std() > 0 else np.nan for p, t in groups])

    def all_three(sel):
        p = np.concatenate([groups[i][0] for i in sel])
        t = np.concatenate([groups[i][1] for i in sel])
        return stats.pearsonr(p, t)[0], stats.spearmanr(p, t)[0], np.nanmean(within[sel])

    point = all_three(np.arange(len(groups)))
    boot = np.array([all_three(rng.integers(0, len(groups), len(groups))) for _ in range(n_boot)])
    lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    return {name: (point[j], lo[j], hi[j]) for j, name in enumerate(("pearson", "spearman", "within"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=2, help="samples per validation structure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh-heads", type=int, default=19,
                        help="re-initialised heads: the chance distribution (19 puts a one-sided 5%% test in reach)")
    parser.add_argument("--eval-tokens", type=int, default=32,
                        help="tokens per evaluation crop (default: the training crop, the size the head learnt on)")
    parser.add_argument("--eval-only", action="store_true", help="evaluate the checkpoint already in --out/run")
    parser.add_argument("--crops", type=int, default=4, help="fixed spatial crops per validation structure")
    parser.add_argument("--ema", action="store_true", help="evaluate the EMA weights (default: the raw weights)")
    parser.add_argument("--pair-readout", action=argparse.BooleanOptionalAction, default=True,
                        help="model.confidence_pair_readout (default on; --no-pair-readout trains AF3's head as is)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/confidence_calibration"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = run_config(args.out, args.steps, args.seed, args.pair_readout)
    t0, r0 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
    if not args.eval_only:
        train_run(config, args.out / "run")
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    train_wall, train_cpu = time.time() - t0, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)

    loaded = load_model(args.out / "run", use_ema=args.ema)
    # Chance: the same trunk and samples, the head re-initialised with other seeds. A single random head
    # correlates by chance (its random projection of trunk features may track lDDT either way); the
    # distribution over many seeds is that chance level, and the trained head's rank in it is the test.
    heads = [loaded.model.confidence_head]
    for k in range(args.fresh_heads):
        fresh = copy.deepcopy(loaded.model.confidence_head)
        torch.manual_seed(1000 + k)
        apply_init(fresh, loaded.model.config.init, zero_conditioning=loaded.model.config.zero_init_conditioning)
        heads.append(fresh.eval())
    batches = examples(config, args.eval_tokens, args.crops, args.seed)
    collected = collect(loaded.model, heads, batches, 1, args.samples, args.seed)
    groups, head_ce, ce_floor = collected["groups"], collected["ce"], collected["ce_floor"]
    sensitivity = collected["sample_sensitivity"]
    rows = [("trained", groups[0])] + [(f"fresh head {k}", g) for k, g in enumerate(groups[1:])]
    trained = rows[0][1]
    stats_of = {name: correlations(g, seed=args.seed) for name, g in rows}
    table = Table(title=f"pLDDT vs true lDDT per token, {len(trained)} validation structures × {args.crops} crops "
                  f"of {args.eval_tokens} tokens, {sum(len(g[0]) for g in trained)} token-samples "
                  f"({args.samples} samples each)")
    for col in ("head", "pooled Pearson r [95% CI]", "pooled Spearman ρ [95% CI]", "within-structure r [95% CI]",
                "mean pLDDT", "mean lDDT", "moves with the sample"):
        table.add_column(col)
    reference = ("distogram-expected lDDT (no head)", collected["reference"])
    stats_of[reference[0]] = correlations(reference[1], seed=args.seed)
    for (name, g), moves in zip([*rows, reference], [*sensitivity, None], strict=True):
        p = np.concatenate([x[0] for x in g])
        t = np.concatenate([x[1] for x in g])
        table.add_row(name, *(f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for v in stats_of[name].values()),
                      f"{p.mean():.3f}", f"{t.mean():.3f}", "" if moves is None else f"{moves:.2g}")
    console = Console(width=200)
    console.print(table)
    console.print("moves with the sample: RMS change of a token's pLDDT between samples of the same crop, over that "
                  "of its true lDDT (0: the head ignores the sample's coordinates). The last row needs no head: the "
                  "lDDT each token's sample distances would get under the trunk's own distogram.")
    # The test: where the trained head falls in the chance distribution of re-initialised heads (one-sided
    # rank p-value, (1 + #fresh ≥ trained) / (K + 1)).
    verdict = {}
    for stat in ("pearson", "spearman", "within"):
        mine = stats_of["trained"][stat][0]
        chance = np.array([stats_of[name][stat][0] for name, _ in rows[1:]])
        p_rank = (1 + int((chance >= mine).sum())) / (len(chance) + 1)
        # The rank test cannot go below 1 / (K + 1); how far beyond the fresh heads the trained one lies is the
        # distance in their standard deviations.
        z = (mine - chance.mean()) / chance.std(ddof=1)
        verdict[stat] = {"trained": mine, "chance_mean": float(chance.mean()), "chance_sd": float(chance.std(ddof=1)),
                         "chance_max": float(chance.max()), "p_rank": p_rank, "z": float(z)}
        console.print(f"{stat}: trained {mine:+.3f}; {len(chance)} fresh heads {chance.mean():+.3f} ± "
                      f"{chance.std(ddof=1):.3f} (max {chance.max():+.3f}); rank p = {p_rank:.3f}, {z:+.1f} sd → "
                      + ("beats chance" if p_rank <= 0.05 else "not distinguishable from chance at 5 %"))
    console.print(f"pLDDT cross-entropy per atom: trained {head_ce[0]:.3f}, fresh heads {head_ce[1:].mean():.3f} "
                  f"(min {head_ce[1:].min():.3f}); a constant prediction of these targets' own histogram "
                  f"{ce_floor:.3f} (below it the head tells atoms apart)")
    import json

    (args.out / "calibration.json").write_text(json.dumps(
        {"steps": args.steps, "samples": args.samples, "structures": len(trained), "ema": args.ema,
         "eval_tokens": args.eval_tokens, "crops": args.crops,
         "heads": {name: {k: list(v) for k, v in st.items()} for name, st in stats_of.items()},
         "verdict": verdict,
         "plddt_ce": {"trained": float(head_ce[0]), "fresh": [float(v) for v in head_ce[1:]],
                      "constant_histogram": ce_floor},
         "pair_readout": loaded.model.config.confidence_pair_readout,
         "sample_sensitivity": {"trained": float(sensitivity[0]), "fresh": [float(v) for v in sensitivity[1:]]}},
        indent=1, default=float))
    if not args.eval_only:
        console.print(f"training: {args.steps} steps, wall {train_wall:.0f} s, CPU (user+sys) {train_cpu:.0f} s, "
                      f"torch threads 1")


if __name__ == "__main__":
    main()
