"""Rich tables: the dry-run plan of a sweep, and the live/status view of its runs."""

from __future__ import annotations

from rich.table import Table

from harness.data.config import STARTER_ATOMS_PER_TOKEN
from harness.sizes import estimate
from harness.sweep.progress import RunProgress
from harness.sweep.spec import RunSpec
from harness.sweep.study import StudyPlan
from harness.sweep.study import describe as describe_study
from harness.tracking import names

STATUS_STYLE = {"queued": "yellow", "running": "cyan", "done": "green", "failed": "bold red",
                "not started": "dim"}


def _si(x: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _precision(precision: dict[str, str]) -> str:
    trunk = {precision[k] for k in ("template_embedder", "msa_module", "pairformer")}
    return (f"trunk {'/'.join(sorted(trunk))}, conf {precision['confidence_head']}, "
            f"diff {precision['diffusion_module']}, loss {precision['losses']}")


def _memory_cell(size, gpu_memory_gb: float | None) -> str:
    """Per stage: crop, traced GB, chunking in effect, and a mark when it does not fit the GPU with headroom."""
    from harness.memory.plan import HEADROOM

    lines = []
    for p in size.memory:
        chunk = "all" if p.diffusion_chunk is None else str(p.diffusion_chunk)
        chunking = f"diff {chunk}/{p.diffusion_batch}{' auto' if p.chunk_source == 'auto' else ''}"
        if p.sublayers:
            chunking += f", sub-layer ckpt{' auto' if p.sublayers_source == 'auto' else ''}"
        if p.group > 1:
            chunking += f", Pairformer ckpt groups of {p.group}{' auto' if p.group_source == 'auto' else ''}"
        if p.memory is None:  # a CPU run (no GPU memory to fit; auto: all copies), or not in the cache
            lines.append(f"{p.crop_tokens}: not traced ({p.untraced}), {chunking}")
            continue
        line = f"{p.crop_tokens}: {p.memory.peak_gb:.3g} GB traced, {chunking}, lDDT {p.lddt_block_rows}"
        if gpu_memory_gb is not None and p.memory.peak_gb > (1 - HEADROOM) * gpu_memory_gb:
            line += f" [bold red]DOES NOT FIT ({(1 - HEADROOM) * gpu_memory_gb:.3g} GB)[/bold red]"
        lines.append(line)
    return "\n".join(lines)


def plan_table(specs: list[RunSpec], where: str, title: str, gpu_memory_gb: float | None = None) -> Table:
    """One row per run: model size, the recipe in effect (crop, batch, precision, checkpointing) and its cost;
    ``gpu_memory_gb`` marks the runs whose traced step needs more than 90 % of it."""
    from harness.memory.plan import HEADROOM

    limit = (f"GPU {gpu_memory_gb:g} GB, fits = within {(1 - HEADROOM) * gpu_memory_gb:.3g} GB"
             if gpu_memory_gb is not None
             else "GPU memory not stated (--gpu-memory or the SLURM profile's gpu_memory_gb)")
    table = Table(title=title, caption=f"runs on: {where}; folders under {specs[0].run_dir.parent}; "
                  f"FLOPs: forward + backward of a typical crop ({STARTER_ATOMS_PER_TOKEN} atoms/token), mean over "
                  "recycling draws; "
                  "memory: traced peak per GPU of one training step per stage (fake tensors: crop filling the "
                  "atom budget, Adam state, accumulated gradients, EMA), crop: GB, diffusion copies per call, "
                  f"lDDT atoms per block; {limit}"
                  if specs else None)
    for col in ("run", "preset", "c_z", "depth pf/diff", "attention", "sampler γ₀/η", "params", "crop tok/atoms/MSA",
                "global batch", "precision", "ckpt", "FLOPs/example", "FLOPs/step", "memory/GPU (traced)",
                "run key"):
        table.add_column(col, overflow="fold")
    for spec in specs:
        m = spec.config.model
        size = estimate(spec.config)
        r = size.recipe
        depth = f"{m.n_pairformer_blocks}/{m.n_diffusion_blocks}"
        crop = f"{r.crop_tokens}/{r.atom_budget}/{r.msa_rows}"
        batch = (f"{r.global_batch} = {r.per_device_batch}x{r.devices}x{r.num_nodes}x{r.accumulation} acc"
                 if isinstance(r.global_batch, int) else f"{r.per_device_batch}/device (devices auto)")
        mem = _memory_cell(size, gpu_memory_gb)
        attention = m.triangle_attention + (", parallel blocks" if m.transformer_block_order == "parallel" else "")
        table.add_row(spec.label, m.preset or "-", str(m.c_z), depth, attention,
                      f"{m.sampler.gamma_0:g}/{m.sampler.step_scale:g}", _si(size.params),
                      crop, batch, _precision(r.precision) + (
                          f", conf Adam ε {r.confidence_adam_eps:.0e}" if r.confidence_adam_eps is not None else "")
                      + (", conf pair readout" if m.use_confidence_head and m.confidence_pair_readout else ""),
                      "on" if r.checkpoint_blocks else "off",
                      _si(size.flops_per_example), _si(size.flops_per_step), mem, spec.key)
    return table


def study_table(plan: StudyPlan) -> Table:
    """Per budget and configuration: the steps its schedule ends at, the schedule, where the run starts (from
    scratch or branched off the configuration's longest run) and the learning rate in effect."""
    design = plan.design
    lr = {"scan": "each configuration's lr chosen by its scan (factors "
                  + ", ".join(f"{f:g}" for f in design.scan.factors) + " of train.lr, seeds "
                  + ", ".join(map(str, design.scan.seeds)) + ")",
          "config": "the runs' own train.lr"}
    mode = next((s.tags.get(names.TAG_STUDY_LR) for s in [*plan.scan, *(plan.runs or [])]), design.lr)
    table = Table(title=f"study: {len(plan.budgets)} budgets x {len({c for c, _ in plan.steps})} configurations, "
                        f"each run complete at its budget",
                  caption=f"steps = budget / analytic FLOPs per step (typical crop); warmup-stable-decay, "
                          f"cooldown {design.decay_fraction:g} of the steps; lr: {lr[mode]}; seeds share a row"
                          + ("; scan runs validate at their last step only" if plan.scan else ""))
    for col in ("budget", "configuration", "steps", "schedule", "starts", "lr"):
        table.add_column(col, overflow="fold")
    for row in describe_study(plan):
        table.add_row(row["budget"], row["configuration"], str(row["steps"]), row["schedule"], row["starts"],
                      row["lr"])
    return table


def progress_table(rows: list[RunProgress], title: str, *, with_log: bool = True) -> Table:
    """One row per run; ``with_log`` adds the job's log path (for `harness status`, not the live view)."""
    table = Table(title=title)
    for col in ("run", "state", "step", "loss", "val lDDT", "job", "attempts") + (("log",) if with_log else ()):
        table.add_column(col, overflow="fold")
    for row in rows:
        style = STATUS_STYLE.get(row.status, "")
        loss, lddt = row.loss, row.last_metrics.get(names.VAL_LDDT)
        job = row.job
        cells = [
            row.spec.label, f"[{style}]{row.status}[/{style}]" if style else row.status,
            f"{row.step}/{row.spec.config.train.max_steps}",
            "-" if loss is None else f"{loss:.4g}", "-" if lddt is None else f"{lddt:.3f}",
            f"{job.executor}:{job.job_id}" if job else "-", str(job.attempts) if job else "-",
        ]
        table.add_row(*cells, *((job.log if job else "-",) if with_log else ()))
    counts = {s: sum(r.status == s for r in rows) for s in STATUS_STYLE}
    table.caption = "  ".join(f"{s}: {n}" for s, n in counts.items() if n)
    return table
