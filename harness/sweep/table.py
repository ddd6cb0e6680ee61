"""Rich tables: the dry-run plan of a sweep, and the live/status view of its runs."""

from __future__ import annotations

from rich.table import Table

from harness.sweep.estimate import estimate
from harness.sweep.progress import RunProgress
from harness.sweep.spec import RunSpec
from harness.tracking import names

STATUS_STYLE = {"queued": "yellow", "running": "cyan", "done": "green", "failed": "bold red",
                "not started": "dim"}


def _si(x: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def plan_table(specs: list[RunSpec], where: str, title: str) -> Table:
    table = Table(title=title, caption=f"runs on: {where}; folders under {specs[0].run_dir.parent}"
                  if specs else None)
    for col in ("run", "preset", "c_z", "depth pf/diff", "attention", "params", "FLOPs/example",
                "peak mem est.", "run key"):
        table.add_column(col, overflow="fold")
    for spec in specs:
        m = spec.config.model
        size = estimate(spec.config)
        depth = f"{m.n_pairformer_blocks}/{m.n_diffusion_blocks}"
        table.add_row(spec.label, m.preset or "-", str(m.c_z), depth,
                      m.triangle_attention, _si(size.params), _si(size.flops_per_example),
                      f"{size.peak_memory_gb:.3g} GB", spec.key)
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
