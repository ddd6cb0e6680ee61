"""`harness config validate|show`: check a run YAML and print it resolved, defaults filled in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from harness.cli._common import console

app = typer.Typer(help="Validate run configs and print them resolved (preset expanded, defaults filled in).",
                  no_args_is_help=True)

ConfigPath = Annotated[Path, typer.Argument(help="run config YAML", show_default=False)]


@app.command("validate")
def validate(path: ConfigPath) -> None:
    """Check a run config: unknown keys, wrong types, out-of-range values and missing files are errors."""
    from harness.config import load_run_config
    from harness.recipe import resolve

    config = load_run_config(path)
    resolve(config, str(path))  # what it derives (accumulation, atom budgets) must be derivable
    console.print(f"[green]ok[/green] {path}: run {config.name!r}, config hash {config.config_hash()}")


@app.command("show")
def show(path: ConfigPath) -> None:
    """Print the resolved config as YAML (the preset expanded, every default filled in), then what it derives
    (``derived``: atom budget, accumulation, precision per module, checkpointing, stages, as a run folder's
    config.yaml records them) and, as comments, its estimated FLOPs and each stage's traced memory per GPU."""
    from harness.config import load_run_config
    from harness.recipe import resolve
    from harness.sizes import estimate

    config = load_run_config(path)
    recipe = resolve(config, str(path))
    size = estimate(config, recipe=recipe)
    shown = config.model_dump(mode="json") | {"derived": recipe.as_dict()}
    estimate_block = {"estimate": {
        "params": size.params,
        "example": {"tokens": size.example.n_tokens, "atoms": size.example.n_atoms, "msa_rows": size.example.n_msa},
        "flops_per_example": size.flops_per_example, "flops_per_step": size.flops_per_step,
        # Traced (fake tensors) peak of one training step per GPU, per stage, at the stage's worst-case crop.
        "memory_gb_per_gpu": {f"stage from step {p.start}, crop {p.crop_tokens}/{p.atoms}":
                              {"traced": round(p.memory.peak_gb, 3) if p.memory is not None
                               else f"not traced ({p.untraced})",
                               "chunking": p.describe_chunking()}
                              for p in size.memory},
    }}
    typer.echo(yaml.safe_dump(shown, sort_keys=False), nl=False)
    # As comments, so that the output stays a config that loads (``derived`` is checked on load).
    for line in yaml.safe_dump(estimate_block, sort_keys=False).splitlines():
        typer.echo(f"# {line}")
