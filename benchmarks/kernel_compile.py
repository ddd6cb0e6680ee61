"""Compile every triangle-attention kernel for CUDA GPUs on this machine, no GPU needed, and check the result.

Triton compiles for a CUDA target without a device (``triton.compile(ASTSource(...), target=GPUTarget("cuda",
arch, 32))``) and ships ``ptxas``, whose ``-v`` report gives registers, spill bytes and the stack frame. For
each kernel × each launch configuration the dispatcher can choose (variant, dtype, head dim, mask, tile,
warps, stages; fp32 with and without TF32 dots) × each ``--arch``, the host code of ``models.kernels`` runs
on CPU tensors under ``launch.capture_launches()``, so what is compiled is exactly what it would launch:
the same arguments, hence the same Triton specialisation (strides of 1, multiples of 16), and the same
constexprs and launch options. One row per compile:

    kernel  arch  dtype  D  mask  tile  warps  stages  regs  spill (stores+loads, bytes)  smem / limit  tensor cores

It exits 1 on a compile failure, a spill, a shared-memory overflow or a dot without tensor-core instructions
(except fp32 with TF32 off, which Triton computes on the FMA units by design); 2 on bad arguments.

    python benchmarks/kernel_compile.py --arch 80 90            # every configuration (BENCHMARKS.md)
    python benchmarks/kernel_compile.py --arch 80 90 --production   # the model's: bf16, D=32 (CI: with mask)

Run it without ``TRITON_INTERPRET=1`` (the interpreter replaces the kernels by Python functions). The
compiles go through Triton's cache (``~/.triton/cache``), so a rerun of unchanged kernels is fast.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

# Shared memory one thread block may opt into (bytes): A100 (sm_80) 163 KiB, H100 (sm_90) 227 KiB; the
# consumer parts sm_86 / sm_89 have 99 KiB.
SMEM_LIMIT = {80: 166_912, 86: 101_376, 89: 101_376, 90: 232_448}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# Lengths whose launches differ: Triton specialises sizes that are multiples of 16 (384) and not (200); the
# configurations (tiles, warps, pipeline depth) are the tuner's candidates, each compiled. The model always
# passes a mask; without one (direct calls) the kernels only lose code, so the production set also checks it.
PRODUCTION = dict(variants=("vanilla", "gated"), dtypes=("bf16",), head_dims=(32,), masks=(True, False),
                  lengths=(200, 384))  # fmt: skip
FULL = dict(variants=("vanilla", "gated"), dtypes=("bf16", "fp16", "fp32"), head_dims=(16, 32, 64, 128),
            masks=(True,), lengths=(200, 384))  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One call of a variant's forward and backward host code with one launch configuration: every kernel it
    launches is compiled."""

    variant: str
    dtype: str
    head_dim: int
    mask: bool
    n: int
    tiles: tuple[int, int, int, int]  # block_m, block_n, warps, stages
    tf32: bool = True  # fp32 only: whether torch allows TF32 matmuls (the kernels follow it)


@dataclass(frozen=True)
class Row:
    kernel: str
    arch: int
    dtype: str
    head_dim: int
    mask: bool
    n: int
    precision: str
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int
    registers: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    stack: int | None = None
    smem: int | None = None
    smem_limit: int | None = None
    tensor_cores: str = ""
    dots: int = 0
    dot_inputs: str = ""  # the element types tt.dot multiplies, from the Triton IR (e.g. "bf16")
    seconds: float = 0.0
    error: str | None = None

    @property
    def spill(self) -> int:
        return (self.spill_stores or 0) + (self.spill_loads or 0)

    def problems(self) -> list[str]:
        """Why this compile fails the check (empty: it passes)."""
        if self.error:
            return [f"compile failed: {self.error}"]
        found = []
        if self.spill or self.stack:
            found.append(f"spills {self.spill_stores} B stores / {self.spill_loads} B loads, stack {self.stack} B")
        if self.smem > self.smem_limit:
            found.append(f"shared memory {self.smem} B > {self.smem_limit} B")
        if self.dots and not self.tensor_cores and self.precision != "ieee":
            found.append("tl.dot without tensor-core instructions")
        if self.dot_inputs != self.dtype:
            found.append(f"{self.dtype} kernel multiplies {self.dot_inputs} tiles")
        return found


def cases(spec: dict, config: tuple[int, int, int, int] | None = None) -> list[Case]:
    """Every case of a set × every configuration the tuner may choose for it (``launch_config.candidates``),
    or only ``config``; fp32 twice, with and without TF32 dots."""
    from models.kernels.launch_config import candidates

    out = []
    for variant, dtype, d, mask, n in itertools.product(
        spec["variants"], spec["dtypes"], spec["head_dims"], spec["masks"], spec["lengths"]
    ):
        configs = [config] if config else [astuple(t) for t in candidates(d, DTYPES[dtype])]
        for tiles, tf32 in itertools.product(configs, (True, False) if dtype == "fp32" else (True,)):
            out.append(Case(variant, dtype, d, mask, n, tiles, tf32))
    return out


def captured_launches(case: Case) -> list:
    """The launches of one forward and one backward of ``case`` on CPU tensors laid out as the model's:
    q, k, v head-split views of dense projections, a contiguous bias (the dispatcher's), a (B, I, J) mask,
    B = 1 and all I = n rows of the pair tensor (a training step)."""
    from models.kernels import gated_triton, vanilla_triton
    from models.kernels.launch import capture_launches
    from models.kernels.launch_config import tf32_allowed, tile_override
    from models.kernels.layouts import split_heads

    n, d, heads, dtype = case.n, case.head_dim, 4, DTYPES[case.dtype]
    z = torch.empty(1, n, n, 8, dtype=dtype)
    weight = torch.empty(3 * heads * d, 8, dtype=dtype)
    q, k, v = split_heads(z, weight, heads, d)
    bias = torch.empty(1, heads, n, n, dtype=dtype)
    mask = torch.ones(1, n, n, dtype=torch.bool) if case.mask else None
    grad_out = torch.empty_like(q)
    scale = d**-0.5
    with capture_launches() as launches, tf32_allowed(case.tf32), tile_override(*case.tiles):
        if case.variant == "vanilla":
            out, lse = vanilla_triton.vanilla_forward(q, k, v, bias, mask, scale)
            vanilla_triton.vanilla_backward(grad_out, q, k, v, bias, mask, out, lse, scale)
        else:
            gated_triton.gated_forward(q, k, v, bias, mask, scale)
            gated_triton.gated_backward(grad_out, q, k, v, bias, mask, scale)
    return list(launches)


_PTXAS = re.compile(
    r"(?P<stack>\d+) bytes stack frame, (?P<stores>\d+) bytes spill stores, (?P<loads>\d+) bytes spill loads.*?"
    r"Used (?P<regs>\d+) registers",
    re.S,
)


def parse_ptxas(log: str) -> dict:
    """Registers, spill stores/loads and stack bytes of the one entry function in a ``ptxas -v`` report."""
    found = _PTXAS.search(log)
    if found is None:
        raise ValueError(f"no resource usage in the ptxas report:\n{log}")
    return {"registers": int(found["regs"]), "spill_stores": int(found["stores"]),
            "spill_loads": int(found["loads"]), "stack": int(found["stack"])}  # fmt: skip


def tensor_core_ops(ptx: str) -> tuple[str, int]:
    """The tensor-core instruction families in a PTX listing ("wgmma", "mma", both or ""), and the number of
    dots in it (``tl.dot`` lowers to wgmma on sm_90, mma.sync on sm_80, or FMAs for exact fp32)."""
    families = [name for name, op in (("wgmma", "wgmma.mma_async"), ("mma", "mma.sync")) if op in ptx]
    return "+".join(families), ptx.count("wgmma.mma_async") + ptx.count("mma.sync")


_DOT_TYPES = re.compile(r"tt\.dot .*?: tensor<\d+x\d+x(\w+)> \* tensor<\d+x\d+x(\w+)>")
_IR_TYPES = {"bf16": "bf16", "f16": "fp16", "f32": "fp32"}


def dot_input_types(ttir: str) -> str:
    """The operand element types of every ``tt.dot`` in Triton IR, joined ("bf16", or "bf16+fp32" when some
    dot was promoted, as ``tl.maximum(x, 0.0)`` on a bf16 x once did)."""
    found = {_IR_TYPES.get(t, t) for pair in _DOT_TYPES.findall(ttir) for t in pair}
    return "+".join(sorted(found))


def _ptxas_report(ptx: str, arch: int) -> str:
    """Run the ptxas that ships with Triton on ``ptx`` with Triton's own flags plus ``-v``."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernel.ptx"
        src.write_text(ptx)
        cmd = [get_ptxas(arch).path, "-lineinfo", "-v", "--regAllocOptLevel=2",
               f"--gpu-name={sm_arch_from_capability(arch)}", str(src), "-o", str(src.with_suffix(".o"))]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def compile_launch(launch, arch: int):
    """Compile one captured launch for ``sm_<arch>`` exactly as ``kernel[grid](...)`` would on that GPU: the
    JIT's own binder specialises the arguments, then ``triton.compile`` runs for the CUDA target."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    kernel, target = launch.kernel, GPUTarget("cuda", arch, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*launch.args, **launch.meta)
    options, signature, constexprs, attrs = kernel._pack_args(backend, launch.meta, bound, specialization, options)
    return triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target, options=options.__dict__)


def compile_case(case: Case, archs: tuple[int, ...]) -> list[Row]:
    """Every kernel of ``case`` for every arch; a failure is a row with ``error`` set, not an exception."""
    rows = []
    for launch in captured_launches(case):
        meta = launch.meta
        base = dict(kernel=f"{case.variant}.{launch.kernel.fn.__name__.strip('_')}", dtype=case.dtype,
                    head_dim=case.head_dim, mask=case.mask, n=case.n, precision=meta["PRECISION"],
                    block_m=meta["BLOCK_M"], block_n=meta["BLOCK_N"], num_warps=meta["num_warps"],
                    num_stages=meta["num_stages"])  # fmt: skip
        for arch in archs:
            start = time.perf_counter()
            try:
                compiled = compile_launch(launch, arch)
                ptx = compiled.asm["ptx"]
                usage = parse_ptxas(_ptxas_report(ptx, arch))
                cores, dots = tensor_core_ops(ptx)
                row = Row(**base, arch=arch, **usage, smem=compiled.metadata.shared, smem_limit=SMEM_LIMIT[arch],
                          tensor_cores=cores, dots=dots + _fma_dots(compiled),
                          dot_inputs=dot_input_types(compiled.asm["ttir"]))  # fmt: skip
            except Exception as exc:  # reported as a failed row; the table goes on
                row = Row(**base, arch=arch, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            rows.append(Row(**{**asdict(row), "seconds": round(time.perf_counter() - start, 2)}))
    return rows


def _fma_dots(compiled) -> int:
    """``tt.dot`` ops the kernel's Triton IR holds when none lowered to a tensor-core instruction (exact fp32)."""
    ptx = compiled.asm["ptx"]
    return 0 if tensor_core_ops(ptx)[1] else compiled.asm["ttir"].count("tt.dot ")


def run(spec: dict, archs: tuple[int, ...], jobs: int, config: tuple[int, int, int, int] | None = None) -> list[Row]:
    """Compile every case of ``spec`` (with ``config`` only, when given) for ``archs`` with ``jobs`` processes."""
    todo = cases(spec, config)
    if jobs <= 1:
        return [row for case in todo for row in compile_case(case, archs)]
    with ProcessPoolExecutor(jobs) as pool:
        return [row for rows in pool.map(compile_case, todo, itertools.repeat(archs)) for row in rows]


def render(rows: list[Row]) -> str:
    """The table, one row per compile, a failed check marked in the last column."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Triangle-attention kernels compiled for CUDA (ptxas -v)")
    for col in ("kernel", "sm", "dtype", "D", "mask", "n", "dot", "tile", "warps", "stages", "regs",
                "spill B", "smem KiB / limit", "tensor cores", "check"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("kernel", "check", "tensor cores") else "right")
    for r in rows:
        problems = r.problems()
        smem = "–" if r.smem is None else f"{r.smem / 1024:.0f} / {r.smem_limit / 1024:.0f}"
        table.add_row(r.kernel, str(r.arch), r.dtype, str(r.head_dim), "yes" if r.mask else "no", str(r.n),
                      r.precision, f"{r.block_m}×{r.block_n}", str(r.num_warps), str(r.num_stages),
                      "–" if r.registers is None else str(r.registers), "–" if r.error else str(r.spill), smem,
                      r.tensor_cores or "–", "; ".join(problems) or "ok")  # fmt: skip
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


def summary(rows: list[Row]) -> str:
    failed = [r for r in rows if r.problems()]
    spill = sum(r.spill for r in rows)
    regs = [r.registers for r in rows if r.registers is not None]
    return (f"{len(rows)} compiles, {len(failed)} failing the check; spill bytes in all: {spill}; registers "
            f"{min(regs, default=0)}–{max(regs, default=0)}; compile time {sum(r.seconds for r in rows):.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", type=int, nargs="+", default=[80, 90], help="compute capabilities, e.g. 80 90")
    parser.add_argument("--production", action="store_true", help="only the model's configurations (CI)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--config", type=int, nargs=4, metavar=("BLOCK_M", "BLOCK_N", "WARPS", "STAGES"),
                        help="compile this launch configuration instead of the tuner's candidates (exploration)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), nargs="+", help="only these input dtypes")
    parser.add_argument("--head-dim", type=int, nargs="+", help="only these head dims")
    parser.add_argument("--n", type=int, nargs="+", help="only these row lengths")
    parser.add_argument("--variant", choices=("vanilla", "gated"), nargs="+", help="only these variants")
    parser.add_argument("--mask", choices=("yes", "no"), nargs="+", help="only with / without a key mask")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.arch) - set(SMEM_LIMIT))
    if unknown:
        parser.error(f"--arch {unknown}: supported compute capabilities are {sorted(SMEM_LIMIT)}")
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("unset TRITON_INTERPRET: the interpreter replaces the kernels, there is nothing to compile")
    spec = dict(PRODUCTION if args.production else FULL)
    spec |= {"dtypes": tuple(args.dtype)} if args.dtype else {}
    spec |= {"head_dims": tuple(args.head_dim)} if args.head_dim else {}
    spec |= {"lengths": tuple(args.n)} if args.n else {}
    spec |= {"variants": tuple(args.variant)} if args.variant else {}
    spec |= {"masks": tuple(m == "yes" for m in args.mask)} if args.mask else {}
    rows = run(spec, tuple(args.arch), args.jobs, tuple(args.config) if args.config else None)
    print(render(rows))
    print(summary(rows))
    for r in rows:
        for problem in r.problems():
            print(f"FAIL {r.kernel} sm_{r.arch} {r.dtype} D={r.head_dim} n={r.n}: {problem}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 1 if any(r.problems() for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
