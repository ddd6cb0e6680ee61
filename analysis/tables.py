"""Tables of a sweep beside the paper's numbers, written as Markdown, CSV and LaTeX.

- :func:`width_vs_depth_table` — measured parameters, FLOPs per example, throughput, peak memory and final
  validation metrics per configuration (seeds aggregated, with intervals and baselines), next to the paper's
  parameters and iter/s (docs/DESIGN.md §1.4). Miniature runs are far smaller than the paper's models, so the
  ``×base`` columns compare ratios to the base config.
- :func:`fit_table` — power-law coefficients with bootstrap intervals, the extrapolation check, and the laws
  refused with their reasons.
- :func:`data_table` — how many train/val structures and tokens the runs saw.
- :func:`foldbench_table` — the ``harness eval`` summary (``analysis.eval.summarize``: columns ``task``,
  ``value``, ``value_evaluated_only``, ``n_targets``) as one row beside the published FoldBench rows (§3).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paper
from analysis.collect import ReportInputError, rescued
from analysis.fits import LAW_BACKTEST, LAW_C, LAW_N, LAW_ND, ScalingFits
from analysis.seeds import Estimate

ITER_PER_S, EXAMPLES_PER_S, PEAK_MB = "throughput/iter_per_s", "throughput/examples_per_s", "memory/peak_mb"


def paper_row_for(preset: str) -> paper.PaperConfig | None:
    """The paper configuration a preset name refers to: exact name, or the name as a ``_``/``-`` separated
    part (``mini_medium`` → medium); the longest matching name wins (``deep_pairformer`` over ``base``)."""
    parts = preset.replace("-", "_")
    for config in sorted(paper.WIDTH_VS_DEPTH, key=lambda c: -len(c.name)):
        if parts == config.name or f"_{config.name}_" in f"_{parts}_":
            return config
    return None


def _late_values(frame: pd.DataFrame, runs: list[str], column: str) -> np.ndarray:
    """The second half of each run's logged values of ``column`` (skips warm-up and compilation), pooled."""
    if column not in frame:
        return np.array([])
    parts = [frame.loc[frame["run"] == run, column].dropna().to_numpy() for run in runs]
    return np.concatenate([v[len(v) // 2:] for v in parts]) if parts else np.array([])


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _spread(values: np.ndarray) -> str:
    """``p10–p90`` of a measurement over its logged values (throughput varies step to step)."""
    if not len(values):
        return ""
    return f"{np.percentile(values, 10):.3g}–{np.percentile(values, 90):.3g}"


def estimate_cell(e: Estimate | None) -> str:
    """``0.153 ± 0.004 (3 seeds)``; one seed without recorded estimator noise says so instead of a ±."""
    if e is None:
        return ""
    seeds = f"{e.n_seeds} seed{'s' if e.n_seeds != 1 else ''}"
    if math.isnan(e.low):
        return f"{e.mean:.4g} ({seeds}, ± n/a)"
    extra = "" if e.seed_spread_known else ", estimator noise only"
    return f"{e.mean:.4g} ± {(e.high - e.low) / 2:.2g} ({seeds}{extra})"


def width_vs_depth_table(frame: pd.DataFrame, metrics: tuple[str, ...] = ("val/lddt", "val/loss")) -> pd.DataFrame:
    """One row per configuration (its seeds aggregated) of a tidy (run, step) frame, paper columns alongside;
    sorted like the paper.

    Final metrics are ``mean ± half-width`` of the 95% interval over seeds and estimator noise
    (:mod:`analysis.seeds`); beside each structure metric its untrained (step-0) value and, for lDDT, the
    geometric baseline (:mod:`analysis.baselines`). Throughput is the median over the runs' second halves with
    its p10–p90 range; parameter and FLOP counts are exact. ``guard`` marks configurations with runs the
    stability guard rescued.
    """
    from analysis.baselines import geometric
    from analysis.seeds import final_by_config, step0_by_config

    first = frame.drop_duplicates("run")
    rows = []
    finals = {m: final_by_config(frame, m) for m in metrics if m in frame and frame[m].notna().any()}
    step0 = {m: step0_by_config(frame, m) for m in finals}
    baselines = {m: geometric(frame, m) for m in finals}
    for config, runs in first.groupby("config", sort=False):
        r = runs.iloc[0]
        names = runs["run"].tolist()
        ref = paper_row_for(str(r["preset"]))
        n_rescued = int(rescued(runs).sum())
        unknown = int(runs["guard_rescued"].isna().sum()) if "guard_rescued" in runs else len(runs)
        iter_s = _late_values(frame, names, ITER_PER_S)
        row = {
            "config": config, "preset": r["preset"], "axis": r["axis"], "c_z": r["width"],
            "pairformer_blocks": r["depth_pairformer"], "structure_blocks": r["depth_structure"],
            "seeds": len(runs),
            "guard": (f"† {n_rescued} of {len(runs)} rescued" if n_rescued else
                      "not recorded" if unknown == len(runs) else "none rescued"),
            "params": r["params"], "paper_params": ref.params if ref else math.nan,
            "flops_per_example": r["flops_per_example"],
            "iter_per_s": _median(iter_s), "iter_per_s p10–p90": _spread(iter_s),
            "paper_iter_per_s": ref.iter_per_s if ref else math.nan,
            "examples_per_s": _median(_late_values(frame, names, EXAMPLES_PER_S)),
            "peak_memory_mb": frame.loc[frame["run"].isin(names), PEAK_MB].max() if PEAK_MB in frame else math.nan,
        }
        for metric, by_config in finals.items():
            row[f"final {metric}"] = estimate_cell(by_config.get(config))
            if metric.startswith("val/") and "lddt" in metric:
                row[f"{metric} step 0"] = estimate_cell(step0[metric].get(config))
                if baselines[metric] is not None:
                    row[f"{metric} geometric baseline"] = f"{baselines[metric].estimate.mean:.4g}"
        rows.append(row)
    table = pd.DataFrame(rows)
    order = {c.name: i for i, c in enumerate(paper.WIDTH_VS_DEPTH)}
    table["_order"] = [order.get(getattr(paper_row_for(str(p)), "name", ""), 99) for p in table["preset"]]
    table = table.sort_values(["_order", "params", "config"]).drop(columns="_order").reset_index(drop=True)
    base = table[table["preset"].map(lambda p: getattr(paper_row_for(str(p)), "name", "") == "base")]
    if not base.empty:
        table["params ×base"] = table["params"] / base["params"].iloc[0]
        table["paper params ×base"] = table["paper_params"] / paper.WIDTH_VS_DEPTH[0].params
        table["iter/s ×base"] = table["iter_per_s"] / base["iter_per_s"].iloc[0]
        table["paper iter/s ×base"] = table["paper_iter_per_s"] / paper.WIDTH_VS_DEPTH[0].iter_per_s
    return table


def fit_table(fits: dict[str, ScalingFits]) -> pd.DataFrame:
    """One row per law per metric: coefficients ``value [low, high]`` with their points, or ``not fitted:
    <reason>`` for a law :func:`analysis.fits.fit_problem` refused; the extrapolation backtest's prediction
    with its interval beside the observed held-out value."""
    rows = []
    laws = {LAW_N: "L(N) = E + A·N^−α (converged runs)", LAW_C: "L(C) = E + A·C^−α (compute frontier)",
            LAW_ND: "L(N,D) = E + A·N^−α + B·D^−β", LAW_BACKTEST: "extrapolation: L(N) without the largest N"}
    for metric, f in fits.items():
        for law, fit in ((LAW_N, f.params), (LAW_C, f.compute)):
            if fit is not None:
                rows.append({"metric": metric, "law": laws[law], "fitted": f.target, "n_points": fit.n_points,
                             **{k: _with_interval(getattr(fit, k), fit.intervals[k]) for k in ("E", "A", "alpha")}})
        if f.chinchilla is not None:
            c = f.chinchilla
            rows.append({"metric": metric, "law": laws[LAW_ND], "fitted": f.target, "n_points": c.n_points,
                         **{k: _with_interval(getattr(c, k), c.intervals[k]) for k in ("E", "A", "alpha")},
                         "B": _with_interval(c.B, c.intervals["B"]),
                         "beta": _with_interval(c.beta, c.intervals["beta"])})
        if f.extrapolation is not None:
            e = f.extrapolation
            rows.append({"metric": metric, "law": laws[LAW_BACKTEST], "fitted": f.target,
                         "n_points": e.fit.n_points, "held_out_N": f"{e.held_out_x:.4g}",
                         "observed": f"{e.observed:.4g}",
                         "predicted": _with_interval(e.predicted, (e.predicted_low, e.predicted_high)),
                         "relative_error": f"{100 * e.relative_error:+.1f}%",
                         "observed within interval": "yes" if e.within_interval else "no"})
        for law, reason in f.refused.items():
            rows.append({"metric": metric, "law": laws[law], "fitted": f.target, "result": f"not fitted: {reason}"})
    return pd.DataFrame(rows).astype(object).fillna("")


def data_table(frame: pd.DataFrame) -> pd.DataFrame:
    """How many train/val structures and tokens the runs saw: one row per distinct combination, with the
    number of runs that recorded it; runs that predate these params are one row marked "not recorded"."""
    columns = ["train_structures", "train_tokens", "val_structures", "val_tokens"]
    runs = frame.drop_duplicates("run")
    if not set(columns) <= set(runs.columns):
        return pd.DataFrame([{"runs": len(runs), "recorded": "not recorded"}])
    rows = []
    recorded = runs.dropna(subset=columns, how="all")
    for values, group in recorded.groupby(columns, dropna=False):
        counts = {c: "" if pd.isna(v) else int(v) for c, v in zip(columns, values, strict=True)}
        rows.append({"runs": len(group), **counts,
                     "val σ nodes": _count_sigmas(group["val_sigmas"].iloc[0]) if "val_sigmas" in group else ""})
    missing = len(runs) - len(recorded)
    if missing:
        rows.append({"runs": missing, "recorded": "not recorded (runs predate the data-count params)"})
    return pd.DataFrame(rows).astype(object).fillna("")


def _count_sigmas(raw: object) -> str:
    import json

    try:
        grid = json.loads(str(raw))
    except (json.JSONDecodeError, TypeError):
        return ""
    return f"{len(grid)} from {min(grid):.3g} to {max(grid):.3g} Å" if grid else ""


def _with_interval(value: float, interval: tuple[float, float]) -> str:
    return f"{value:.4g} [{interval[0]:.4g}, {interval[1]:.4g}]"


def read_eval_summary(path: str | Path) -> pd.DataFrame:
    """A ``harness eval`` summary CSV (``analysis.eval.summarize``), checked for ``task`` and ``value``."""
    path = Path(path)
    try:
        summary = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReportInputError(f"{path}: cannot read evaluation summary CSV ({exc})") from None
    missing = [c for c in ("task", "value") if c not in summary]
    if missing:
        raise ReportInputError(f"{path}: missing columns {missing}; expected the summary written by "
                               "`harness eval` (task, value, value_evaluated_only, n_targets, ...)")
    return summary


def foldbench_table(summary: pd.DataFrame, name: str = "this model", evaluated_only: bool = False) -> pd.DataFrame:
    """Published FoldBench rows plus one measured row ``name``: monomer lDDT, success rates in %.

    ``evaluated_only`` uses FoldBench's convention (failed predictions dropped) instead of counting failures.
    Tasks outside the paper's columns (e.g. protein_peptide) get their own column; absent tasks are blank.
    """
    column = "value_evaluated_only" if evaluated_only and "value_evaluated_only" in summary else "value"
    measured: dict[str, float] = {}
    for _, r in summary.iterrows():
        task = "monomer_lddt" if r["task"] == "monomer" else str(r["task"])
        value = float(r[column])
        measured[task] = value if task == "monomer_lddt" else 100.0 * value
    columns = list(paper.FOLDBENCH_COLUMNS) + sorted(set(measured) - set(paper.FOLDBENCH_COLUMNS))
    rows = [{"model": model, **values} for model, values in paper.FOLDBENCH.items()]
    rows.append({"model": name, **measured})
    table = pd.DataFrame(rows).reindex(columns=["model", *columns])
    if "n_targets" in summary:
        counts = {("monomer_lddt" if t == "monomer" else t): int(n) for t, n in zip(summary["task"],
                                                                                   summary["n_targets"], strict=True)}
        table.loc[len(table)] = ["n targets (this model)", *[counts.get(c, math.nan) for c in columns]]
    return table.rename(columns=paper.FOLDBENCH_LABELS)


# -------------------------------------------------------------------------------------------- writing


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (blank cells for NaN, 4 significant digits)."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "×": r"$\times$", "−": "-", "α": r"$\alpha$", "β": r"$\beta$", "·": r"$\cdot$", "–": "--"}


def _latex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: pd.DataFrame, caption: str = "") -> str:
    """A booktabs ``tabular`` (inside ``table`` with a caption when given)."""
    spec = "l" * len(table.columns)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(_latex(str(c)) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex(_cell(v)) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_latex(caption)}}}", *lines, r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, out_dir: str | Path, stem: str, caption: str = "") -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.tex`` under ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv, tex = (out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "tex"))
    md.write_text((f"**{caption}**\n\n" if caption else "") + to_markdown(table))
    table.to_csv(csv, index=False)
    tex.write_text(to_latex(table, caption))
    return [md, csv, tex]
