"""`harness predict`: sample structures from a checkpoint; mmCIF (pLDDT in B-factor) + confidences JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli._common import console
from harness.predict import INFERENCE_RECYCLES


def command(
    checkpoint: Annotated[Path, typer.Argument(help="a .ckpt file or a run folder (uses checkpoints/last.ckpt)")],
    inputs: Annotated[list[Path], typer.Argument(
        help="what to fold: AlphaFold3 input JSON, FASTA (Boltz-style >ID|TYPE headers or plain), or structure "
             "files (mmCIF/PDB, .gz ok)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="predictions folder (read by `harness eval`)")] = Path(
        "predictions"),
    samples: Annotated[int, typer.Option(min=1, help="diffusion samples per seed")] = 5,
    seed: Annotated[list[int] | None, typer.Option(help="model seeds (repeat for several)")] = None,
    steps: Annotated[int, typer.Option(min=1, help="sampler steps (AF3: 200)")] = 200,
    recycles: Annotated[int, typer.Option(min=0, help="recycling iterations: trunk passes after the first "
                                          "(AF3: 10, so 11 passes)")] = INFERENCE_RECYCLES,
    msa_dir: Annotated[Path | None, typer.Option(help="MSAs laid out as for `harness data prepare`")] = None,
    no_ema: Annotated[bool, typer.Option("--no-ema", help="use the raw weights instead of the EMA")] = False,
    device: Annotated[str, typer.Option(help="auto (CUDA when available), cpu, cuda, cuda:N")] = "auto",
    chunk_size: Annotated[int | None, typer.Option(min=1, help="rows per chunk of the pair operations; "
                                                   "default: chosen from each target's size")] = None,
    step_scale: Annotated[float | None, typer.Option(help="sampler step scale η > 0 (AF3: 1.5); default: "
                                                     "the run's model.sampler.step_scale")] = None,
) -> None:
    """Sample structures from a checkpoint; write mmCIF (pLDDT in B-factor) and confidences JSON per sample."""
    from harness.predict import predict

    written = predict(checkpoint, inputs, out, n_samples=samples, seeds=seed or None, n_steps=steps,
                      n_recycles=recycles, msa_dir=msa_dir, use_ema=not no_ema, device=device, chunk_size=chunk_size,
                      step_scale=step_scale)
    console.print(f"wrote {len(written)} predictions under {out}")
