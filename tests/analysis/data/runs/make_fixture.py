"""Generate the recorded-runs fixture of ``tests/analysis``: the LOGGING FORMAT, not SeedFold results.

Until the trainer lands, ``analysis`` is tested against runs recorded exactly as ``harness.tracking.names``
prescribes (tags, dotted config params, metric keys, run-folder files), produced by really training a small
stand-in model: per-token residual MLP "trunk" blocks (with real triangle-attention token mixing from
``models.triangle_attention_ref``) and "structure" blocks, regressing 16 3-D points (Å) of a fixed random
teacher. Losses, gradient norms, lDDT of the predicted points, FLOPs (counted by ``FlopCounterMode``),
parameter counts, throughput and peak RSS are all measured; only the model is a stand-in.

Sweeps written (one folder per run: ``<out>/<sweep>/<run_key>/{config.yaml,state.json,metrics.csv}``):
``attention_ablation`` (vanilla/additive/gated), ``lr_stability`` (high lr without warmup vs the lower-lr,
longer-warmup fix), and ``benchmarks/triangle_attention.csv`` (fwd+bwd time of the three attention forms versus
n_tokens on CPU). ``width_vs_depth`` is NOT generated here any more: it holds real SeedFold runs recorded by
``bash scripts/quickstart.sh`` (see README.md beside this file); ``--with-width-vs-depth`` writes the stand-in.

    python tests/analysis/data/runs/make_fixture.py tests/analysis/data/runs [--steps 300]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import yaml
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models.triangle_attention_ref import triangle_attention_torch

N_POINTS, D_IN, HEAD_DIM = 16, 8, 8


@dataclass(frozen=True)
class ToyRun:
    """One configuration of the stand-in model, named like the paper's presets."""

    name: str
    sweep: str
    preset: str
    c_z: int = 16
    n_pairformer_blocks: int = 2
    n_diffusion_blocks: int = 2
    triangle_attention: str = "vanilla"
    lr: float = 3e-3
    warmup_steps: int = 20
    max_steps: int = 400
    batch_size: int = 32
    seed: int = 0

    def config(self) -> dict:
        """Nested like the harness RunConfig (model / train sections)."""
        return {
            "name": self.name, "seed": self.seed,
            "model": {"preset": self.preset, "c_z": self.c_z, "n_pairformer_blocks": self.n_pairformer_blocks,
                      "n_diffusion_blocks": self.n_diffusion_blocks,
                      "triangle_attention": self.triangle_attention},
            "train": {"lr": self.lr, "warmup_steps": self.warmup_steps, "max_steps": self.max_steps,
                      "batch_size": self.batch_size, "grad_clip": 10.0},
        }

    def run_key(self) -> str:
        blob = json.dumps({k: v for k, v in asdict(self).items() if k != "name"}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


SWEEPS: dict[str, list[ToyRun]] = {
    "width_vs_depth": [
        ToyRun("base", "width_vs_depth", "base", c_z=16),
        ToyRun("medium", "width_vs_depth", "medium", c_z=32),
        ToyRun("large", "width_vs_depth", "large", c_z=64),
        ToyRun("deep_pairformer", "width_vs_depth", "deep_pairformer", c_z=16, n_pairformer_blocks=4),
        ToyRun("deep_structure", "width_vs_depth", "deep_structure", c_z=16, n_diffusion_blocks=4),
    ],
    "attention_ablation": [
        ToyRun(f"attn_{v}", "attention_ablation", "base", c_z=32, triangle_attention=v)
        for v in ("vanilla", "additive", "gated")
    ],
    "lr_stability": [
        ToyRun("large_lr_high", "lr_stability", "large", c_z=64, lr=3e-2, warmup_steps=0),
        ToyRun("large_lr_fixed", "lr_stability", "large", c_z=64, lr=1e-2, warmup_steps=100),
    ],
}


class MixingBlock(nn.Module):
    """Token mixing with one of the three triangle-attention forms, then a transition; both residual."""

    def __init__(self, width: int, variant: str):
        super().__init__()
        self.variant, self.heads = variant, max(1, width // HEAD_DIM)
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * self.heads * HEAD_DIM, bias=False)
        self.bias = nn.Parameter(torch.zeros(self.heads, N_POINTS, N_POINTS))
        self.out = nn.Linear(self.heads * HEAD_DIM, width)
        self.transition = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.ReLU(),
                                        nn.Linear(4 * width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # h: (B, P, width)
        b, p, _ = h.shape
        q, k, v = self.qkv(self.norm(h)).view(b, 1, p, 3, self.heads, HEAD_DIM).permute(3, 0, 1, 4, 2, 5)
        mask = torch.ones(b, 1, p, dtype=torch.bool)
        attn = triangle_attention_torch(q, k, v, self.bias.expand(b, -1, -1, -1), mask, variant=self.variant)
        h = h + self.out(attn[:, 0].transpose(1, 2).reshape(b, p, -1))
        return h + self.transition(h)


class StructureBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.ReLU(),
                                 nn.Linear(2 * width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(h)


class ToyModel(nn.Module):
    """x (B, D_IN) → coordinates (B, N_POINTS, 3) in Å."""

    def __init__(self, run: ToyRun):
        super().__init__()
        self.token_embedding = nn.Parameter(torch.randn(N_POINTS, run.c_z) * 0.1)
        self.input_proj = nn.Linear(D_IN, run.c_z)
        self.trunk = nn.Sequential(*[MixingBlock(run.c_z, run.triangle_attention)
                                     for _ in range(run.n_pairformer_blocks)])
        self.structure = nn.Sequential(*[StructureBlock(run.c_z) for _ in range(run.n_diffusion_blocks)])
        self.to_xyz = nn.Linear(run.c_z, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.token_embedding[None] + self.input_proj(x)[:, None]
        return self.to_xyz(self.structure(self.trunk(h))) * 8.0


def teacher(x: torch.Tensor) -> torch.Tensor:
    """A fixed random smooth map to 16 points spread over ~15 Å: the regression target, (B, 16, 3)."""
    g = torch.Generator().manual_seed(1234)
    w1 = torch.randn(D_IN, 64, generator=g) / math.sqrt(D_IN)
    w2 = torch.randn(64, N_POINTS * 3, generator=g) / 8.0
    anchor = torch.randn(N_POINTS, 3, generator=g) * 6.0
    return anchor + 4.0 * (torch.tanh(x @ w1) @ w2).view(-1, N_POINTS, 3)


def lddt(pred: torch.Tensor, true: torch.Tensor, cutoff: float = 15.0) -> torch.Tensor:
    """Mean lDDT: pairs within ``cutoff`` Å in ``true``, thresholds 0.5/1/2/4 Å. (B, P, 3) x2 → ()."""
    d_true, d_pred = torch.cdist(true, true), torch.cdist(pred, pred)
    eye = torch.eye(true.shape[1], dtype=torch.bool)
    pairs = (d_true < cutoff) & ~eye
    err = (d_true - d_pred).abs()
    score = sum((err < t).float() for t in (0.5, 1.0, 2.0, 4.0)) / 4.0
    return ((score * pairs).sum((1, 2)) / pairs.sum((1, 2))).mean()


def train(run: ToyRun) -> tuple[dict, pd.DataFrame]:
    """Train one run; returns (params to record, long metrics frame with step, key, value)."""
    torch.manual_seed(run.seed)
    model = ToyModel(run)
    opt = torch.optim.Adam(model.parameters(), lr=run.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(run.seed + 1)
    x_val = torch.randn(256, D_IN, generator=torch.Generator().manual_seed(99))
    y_val = teacher(x_val)
    n_params = sum(p.numel() for p in model.parameters())
    embedding = model.token_embedding.numel() + sum(p.numel() for p in model.input_proj.parameters())
    with FlopCounterMode(display=False) as counter:
        model(x_val[:1]).sum().backward()
    flops_per_example_fwd_bwd = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        model(x_val[:1])
    params = {"params_total": n_params, "params_non_embedding": n_params - embedding,
              "flops_per_example": counter.get_total_flops()}
    model.zero_grad()

    rows: list[tuple[int, str, float]] = []
    examples = flops = 0.0
    t_last, step_last = time.perf_counter(), 0
    for step in range(1, run.max_steps + 1):
        lr = run.lr * min(1.0, step / run.warmup_steps) if run.warmup_steps else run.lr
        for group in opt.param_groups:
            group["lr"] = lr
        x = torch.randn(run.batch_size, D_IN, generator=gen)
        loss = ((model(x) - teacher(x)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        examples += run.batch_size
        flops += run.batch_size * flops_per_example_fwd_bwd
        if step % 10 == 0:
            now = time.perf_counter()
            iter_per_s = (step - step_last) / (now - t_last)
            t_last, step_last = now, step
            rows += [
                (step, "train/loss", loss.item()), (step, "train/lr", lr),
                (step, "train/grad_norm", float(grad_norm)),
                (step, "throughput/iter_per_s", iter_per_s),
                (step, "throughput/examples_per_s", iter_per_s * run.batch_size),
                (step, "memory/peak_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                (step, "flops/per_step", run.batch_size * flops_per_example_fwd_bwd),
                (step, "flops/cumulative", flops), (step, "data/examples_seen", examples),
                (step, "data/token_pairs_seen", examples * N_POINTS**2),
            ]
        if step % 50 == 0 or step == run.max_steps:
            with torch.no_grad():
                pred = model(x_val)
                rows += [(step, "val/loss", float(((pred - y_val) ** 2).mean())),
                         (step, "val/lddt", float(lddt(pred, y_val)))]
    return params, pd.DataFrame(rows, columns=["step", "key", "value"])


def write_run_folder(out: Path, run: ToyRun, params: dict, metrics: pd.DataFrame,
                     mlflow_run_id: str = "", experiment_id: str = "") -> Path:
    folder = out / run.sweep / run.run_key()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(run.config(), sort_keys=False))
    last = metrics.groupby("key")["value"].last().to_dict()
    state = {"status": "finished", "step": int(metrics["step"].max()), "mlflow_run_id": mlflow_run_id,
             "experiment_id": experiment_id, "last_metrics": last, "params": params,
             "tags": tags_of(run)}
    (folder / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
    metrics.to_csv(folder / "metrics.csv", index=False, float_format="%.6g")
    return folder


def tags_of(run: ToyRun) -> dict[str, str]:
    return {"sweep": run.sweep, "run_key": run.run_key(), "preset": run.preset,
            "attention": run.triangle_attention, "kind": "train", "harness_status": "finished",
            "fixture": "logging-format; stand-in model, not SeedFold"}


def log_to_mlflow(tracking_uri: str, experiment_id: str, run: ToyRun, params: dict,
                  metrics: pd.DataFrame) -> str:
    """Record one run in MLflow with the harness names; returns the MLflow run id."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    client = MlflowClient(tracking_uri)
    mlrun = client.create_run(experiment_id, tags=tags_of(run) | {MLFLOW_RUN_NAME: run.name})
    flat = _flatten(run.config()) | {k: str(v) for k, v in params.items()}
    now = int(time.time() * 1000)
    metric_objs = [Metric(k, float(v), now, int(s)) for s, k, v in metrics.itertuples(index=False)]
    param_objs = [Param(k, v) for k, v in flat.items()]
    for i in range(0, max(len(metric_objs), len(param_objs)), 900):
        client.log_batch(mlrun.info.run_id, metrics=metric_objs[i:i + 900], params=param_objs[i:i + 100])
    client.set_terminated(mlrun.info.run_id)
    return mlrun.info.run_id


def _flatten(mapping: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in mapping.items():
        out |= _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": str(v)}
    return out


def run_sweep(sweep: str, out: Path | None = None, tracking_uri: str | None = None,
              experiment_id: str = "", max_steps: int | None = None) -> list[ToyRun]:
    """Train every run of ``sweep``; write run folders under ``out`` and/or log to MLflow."""
    runs = []
    for run in SWEEPS[sweep]:
        if max_steps is not None:
            run = ToyRun(**(asdict(run) | {"max_steps": max_steps}))
        params, metrics = train(run)
        run_id = log_to_mlflow(tracking_uri, experiment_id, run, params, metrics) if tracking_uri else ""
        if out is not None:
            write_run_folder(out, run, params, metrics, run_id, experiment_id)
        runs.append(run)
    return runs


def benchmark_attention(out: Path, sizes: tuple[int, ...] = (16, 32, 48, 64), repeats: int = 5) -> Path:
    """Median fwd+bwd ms and saved-activation MB of the three attention forms, pair width 32, H=4, d=8."""
    rows = []
    for variant in ("vanilla", "additive", "gated"):
        for n in sizes:
            q, k, v = (torch.randn(1, n, 4, n, 8, requires_grad=True) for _ in range(3))
            bias = torch.randn(1, 4, n, n, requires_grad=True)
            mask = torch.ones(1, n, n, dtype=torch.bool)
            saved: list[int] = []

            def pack(t: torch.Tensor, saved: list[int] = saved) -> torch.Tensor:
                saved.append(t.numel() * t.element_size())
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                triangle_attention_torch(q, k, v, bias, mask, variant=variant).sum().backward()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                triangle_attention_torch(q, k, v, bias, mask, variant=variant).sum().backward()
                times.append((time.perf_counter() - t0) * 1e3)
            rows.append({"variant": variant, "impl": "torch", "n_tokens": n,
                         "ms": sorted(times)[len(times) // 2], "activation_mb": sum(saved) / 2**20})
    path = out / "benchmarks" / "triangle_attention.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.6g")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=None, help="override max_steps of every run")
    parser.add_argument("--with-width-vs-depth", action="store_true",
                        help="also write the stand-in width_vs_depth (replacing the real recorded runs)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for sweep in SWEEPS:
        if sweep == "width_vs_depth" and not args.with_width_vs_depth:
            continue
        run_sweep(sweep, out=args.out, max_steps=args.steps)
    benchmark_attention(args.out)


if __name__ == "__main__":
    main()
