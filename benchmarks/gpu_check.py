"""The first-GPU check, one section per subcommand (``benchmarks/gpu_check.sh`` runs them in order and each
under its own time limit):

    kernels   vanilla / gated Triton kernels and the PyTorch path (additive: PyTorch only, it has no kernel):
              forward and forward+backward ms (median of CUDA-event timings) and peak memory above the inputs,
              n = 256 … 2,048, H = 4 and 16, d = 32, bf16, B = 1, all n rows of the pair tensor
    trifast   the same sizes through trifast's vanilla kernel (registry package), if importable
    cueq      the same sizes through NVIDIA cuEquivariance's vanilla kernel (kernel_impl=cueq), if importable
    train     a miniature for 50 steps with kernel_impl=triton and with kernel_impl=torch, same seed: loss curves
              and their largest relative difference
    report    gpu_check.json and gpu_check.md from the section files (and the GPU tests' JUnit XML)

Every timed row carries the roofline's ideal time for the device (``models.kernels.roofline``: H100 or A100
by name, else none) and the report prints measured / ideal.

``--dry`` runs every section on CPU at tiny sizes, the kernels under the Triton interpreter, so the script is
tested without a GPU (tests/benchmarks/test_gpu_check.py); a dry report says so in its first line.
A configuration that runs out of memory (the PyTorch path builds (I, H, J, J) logits) is recorded as "OOM".
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

import torch

FULL = dict(lengths=(256, 512, 1024, 2048), heads=(4, 16), head_dim=32, dtype="bfloat16", repeats=10, steps=50)
DRY = dict(lengths=(16,), heads=(2,), head_dim=16, dtype="bfloat16", repeats=1, steps=2)


def _inputs(n: int, h: int, d: int, dtype: torch.dtype, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (1, n, h, n, d)
    q, k, v = (torch.randn(shape, generator=g).to(device=device, dtype=dtype) for _ in range(3))
    bias = torch.randn(1, h, n, n, generator=g).to(device=device, dtype=dtype)
    mask = torch.ones(1, n, n, dtype=torch.bool, device=device)
    mask[..., n - n // 8 :] = False
    return q, k, v, bias, mask


def _time(fn, repeats: int, device: str) -> float:
    """Median ms of ``fn()`` after one warm-up call (CUDA events on a GPU, perf_counter on CPU)."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def _measure(call, tensors, repeats: int, device: str) -> dict:
    """fwd ms, fwd+bwd ms and peak MiB above the inputs of ``call(*tensors)``; "OOM" where memory ran out."""
    leaves = [t.detach().requires_grad_(True) for t in tensors]

    def fwd():
        with torch.no_grad():
            call(*leaves)

    def fwd_bwd():
        out = call(*leaves)
        torch.autograd.grad(out, leaves, torch.ones_like(out))

    row = {}
    for name, fn in (("fwd", fwd), ("fwd_bwd", fwd_bwd)):
        try:
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            row[f"{name}_ms"] = _time(fn, repeats, device)
            row[f"{name}_peak_mib"] = (
                (torch.cuda.max_memory_allocated() - base) / 2**20 if device == "cuda" else None
            )
        except torch.OutOfMemoryError:
            row[f"{name}_ms"] = row[f"{name}_peak_mib"] = "OOM"
            torch.cuda.empty_cache()
    return row


def _ideal(row: dict, device: str) -> dict:
    """The roofline's ideal fwd and fwd+bwd ms of a row's problem on this GPU (None off H100 / A100)."""
    from models.kernels.roofline import attention_total, device_for

    gpu = device_for(torch.cuda.get_device_name()) if device == "cuda" else None
    if gpu is None or row["variant"] == "additive":
        return {"ideal_fwd_ms": None, "ideal_fwd_bwd_ms": None}
    costs = attention_total(row["variant"], row["n"], row["heads"], row["head_dim"])
    return {f"ideal_{k}_ms": c.ideal_s(gpu) * 1e3 for k, c in costs.items()}


def section_kernels(p: dict, device: str):
    """Yields one row per (n, H, variant, impl)."""
    from models.kernels import triangle_attention

    dtype = getattr(torch, p["dtype"])
    for n in p["lengths"]:
        for h in p["heads"]:
            q, k, v, bias, mask = _inputs(n, h, p["head_dim"], dtype, device)
            for variant in ("vanilla", "gated", "additive"):
                for impl in ("triton", "torch") if variant != "additive" else ("torch",):
                    def call(q, k, v, bias, variant=variant, impl=impl, mask=mask):
                        return triangle_attention(q, k, v, bias, mask, variant=variant, impl=impl)

                    row = dict(variant=variant, impl=impl, n=n, heads=h, head_dim=p["head_dim"], dtype=p["dtype"])
                    yield row | _measure(call, (q, k, v, bias), p["repeats"], device) | _ideal(row, device)


def section_trifast(p: dict, device: str):
    """Yields one row per (n, H), or one row saying why trifast was skipped."""
    try:
        from trifast import triangle_attention as trifast_attention
    except Exception as exc:  # not installed, or no CUDA Triton backend
        yield {"impl": "trifast", "skipped": f"not importable: {type(exc).__name__}: {exc}"}
        return
    if device != "cuda":
        yield {"impl": "trifast", "skipped": "needs CUDA"}
        return
    dtype = getattr(torch, p["dtype"])
    for n in p["lengths"]:
        for h in p["heads"]:
            q, k, v, bias, mask = _inputs(n, h, p["head_dim"], dtype, device)
            # trifast's layout: q, k, v (B, H, I, J, D), bias (B, H, J, J), mask (B, I, J) with True = masked.
            tensors = [t.transpose(1, 2).contiguous() for t in (q, k, v)] + [bias]
            row = dict(variant="vanilla", impl="trifast", n=n, heads=h, head_dim=p["head_dim"], dtype=p["dtype"])
            yield row | _measure(lambda q, k, v, b, pad=~mask: trifast_attention(q, k, v, b, pad), tensors,
                                 p["repeats"], device) | _ideal(row, device)  # fmt: skip


def section_cueq(p: dict, device: str):
    """Yields one row per (n, H) through cuEquivariance (the dispatcher's impl="cueq"), or why it was skipped."""
    from models.kernels.cueq import cueq_unavailable

    why = cueq_unavailable(device)
    if why:
        yield {"impl": "cueq", "skipped": why}
        return
    from models.kernels import triangle_attention

    dtype = getattr(torch, p["dtype"])
    for n in p["lengths"]:
        for h in p["heads"]:
            q, k, v, bias, mask = _inputs(n, h, p["head_dim"], dtype, device)
            row = dict(variant="vanilla", impl="cueq", n=n, heads=h, head_dim=p["head_dim"], dtype=p["dtype"])
            call = lambda q, k, v, b, mask=mask: triangle_attention(q, k, v, b, mask, variant="vanilla", impl="cueq")  # noqa: E731
            yield row | _measure(call, (q, k, v, bias), p["repeats"], device) | _ideal(row, device)


def _train(kernel_impl: str, steps: int, device: str, root: Path) -> list[float]:
    from harness.config import RunConfig
    from harness.tracking import names
    from harness.train.run import train_run

    config = RunConfig.model_validate({
        "name": f"gpu-check-{kernel_impl}", "runs_dir": str(root), "seed": 0,
        "model": {"preset": "base", "miniature": True, "kernel_impl": kernel_impl},
        "data": {"crop_size": 16 if device == "cpu" else 64, "max_msa_rows": 8, "val_max_tokens": 32},
        "train": {"max_steps": steps, "warmup_steps": 2, "diffusion_batch": 2 if device == "cpu" else 8,
                  "max_cycles": 1, "val_every": 10 * steps, "val_batches": 1, "checkpoint_every": steps,
                  "log_every": 1, "accelerator": "cpu" if device == "cpu" else "gpu", "devices": 1,
                  "threads": 1 if device == "cpu" else None},
        "tracking": {"enabled": False},
    })  # fmt: skip
    folder = root / kernel_impl
    state = train_run(config, folder)
    lines = (folder / names.RUN_METRICS_FILE).read_text().splitlines()[1:]
    losses = [float(v) for _, key, v in (line.split(",")[:3] for line in lines) if key == names.LOSS]
    return {"losses": losses, "params": {k: v for k, v in state.get("params", {}).items() if "kernel" in k}}


def section_train(p: dict, device: str):
    with tempfile.TemporaryDirectory() as tmp:
        triton_run = _train("triton", p["steps"], device, Path(tmp))
        torch_run = _train("torch", p["steps"], device, Path(tmp))
    a, b = triton_run["losses"], torch_run["losses"]
    diffs = [abs(x - y) / max(abs(y), 1e-8) for x, y in zip(a, b, strict=False)]
    yield {
        "steps": p["steps"], "loss_triton": a, "loss_torch": b, "params_triton": triton_run["params"],
        "max_rel_diff": max(diffs) if diffs else math.nan, "final_rel_diff": diffs[-1] if diffs else math.nan,
    }  # fmt: skip


def _tests_summary(xml: Path) -> dict:
    if not xml.exists():
        return {"ran": False}
    suite = ElementTree.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    keys = ("tests", "failures", "errors", "skipped")
    return {"ran": True} | {k: int(suite.get(k, 0)) for k in keys} | {"time_s": float(suite.get("time", 0))}


def _ratio(row: dict, key: str) -> str:
    """measured / ideal (the roofline's) for ``key`` "fwd" or "fwd_bwd"; "–" without an ideal or a time."""
    measured, ideal = row.get(f"{key}_ms"), row.get(f"ideal_{key}_ms")
    if not isinstance(measured, int | float) or not ideal:
        return "–"
    return f"{measured / ideal:.1f}×"


def _cell(v) -> str:
    return "–" if v is None else v if isinstance(v, str) else f"{v:.2f}"


def report(out: Path, dry: bool) -> dict:
    sections = {name: json.loads((out / f"{name}.json").read_text()) if (out / f"{name}.json").exists()
                else {"missing": "section did not finish (time limit or error; see its log)"}
                for name in ("kernels", "trifast", "cueq", "train")}  # fmt: skip
    result = {"dry": dry, "tests": _tests_summary(out / "gpu_tests.xml")} | sections
    lines = [f"# GPU check{' — DRY RUN on CPU (tiny sizes, interpreter): not a measurement' if dry else ''}", ""]
    env = sections["kernels"].get("env", {})
    lines += [f"Device: {env.get('device', '?')}; torch {env.get('torch', '?')}; triton {env.get('triton', '?')}", ""]
    t = result["tests"]
    lines += [f"GPU tests: {t}" if t["ran"] else "GPU tests: not run", ""]
    rows = sections["kernels"].get("rows", []) + [r for name in ("trifast", "cueq")
                                                  for r in sections[name].get("rows", []) if "n" in r]  # fmt: skip
    lines += ["| variant | impl | n | H | fwd ms | fwd+bwd ms | fwd peak MiB | fwd+bwd peak MiB "
              "| fwd / ideal | fwd+bwd / ideal |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["variant"], r["heads"], r["n"], r["impl"])):
        lines.append(f"| {r['variant']} | {r['impl']} | {r['n']} | {r['heads']} | {_cell(r['fwd_ms'])} | "
                     f"{_cell(r['fwd_bwd_ms'])} | {_cell(r['fwd_peak_mib'])} | {_cell(r['fwd_bwd_peak_mib'])} | "
                     f"{_ratio(r, 'fwd')} | {_ratio(r, 'fwd_bwd')} |")  # fmt: skip
    for name in ("trifast", "cueq"):
        for r in sections[name].get("rows", []):
            if "skipped" in r:
                lines += ["", f"{name}: skipped ({r['skipped']})"]
    for r in sections["train"].get("rows", []):
        lines += ["", f"Training {r['steps']} steps, kernel_impl=triton vs torch: largest relative loss difference "
                  f"{r['max_rel_diff']:.3g}, at the last step {r['final_rel_diff']:.3g}; triton run params "
                  f"{r['params_triton']}"]  # fmt: skip
    for name, sec in sections.items():
        exit_file = out / f"{name}.exit"
        code = int(exit_file.read_text()) if exit_file.exists() else 0
        if "missing" in sec:
            lines += ["", f"{name}: {sec['missing']}"]
        elif code != 0:
            sec["incomplete"] = f"exit {code}{' (time limit)' if code == 124 else ''}; rows up to then are shown"
            lines += ["", f"{name}: INCOMPLETE, {sec['incomplete']}"]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=("kernels", "trifast", "cueq", "train", "report"))
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--dry", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.section == "report":
        report(args.out, args.dry)
        print((args.out / "gpu_check.md").read_text())
        return
    device = "cpu" if args.dry else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device; use --dry to exercise the script on CPU")
    p = DRY if args.dry else FULL
    torch.manual_seed(0)
    import triton

    env = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu (dry)", "torch": torch.__version__,
           "triton": triton.__version__}  # fmt: skip
    section = {"kernels": section_kernels, "trifast": section_trifast, "cueq": section_cueq,
               "train": section_train}[args.section]  # fmt: skip
    rows = []
    for row in section(p, device):  # rewritten after every row: a section cut by its time limit keeps its rows
        rows.append(row)
        print(json.dumps(row), flush=True)
        (args.out / f"{args.section}.json").write_text(json.dumps({"env": env, "params": p, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
