"""One report per sweep: plots and tables in a self-contained HTML page and a Markdown page, optionally
logged to MLflow as the artifacts of a report run (tag ``kind=report``) so the MLflow UI shows them.

The page opens with the study's question answered at matched compute (resolved or not, with numbers), then
the data and runs behind it, the figures, the tables and the notes on what the runs did not record.

    report = build_report(frame, "reports/width_vs_depth", sweep="width_vs_depth", plots=("scaling",))
    log_report(report, tracking_uri="http://127.0.0.1:5000", experiment="seedfold-scaling")
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.collect import ReportInputError, rescued
from analysis.compare import Answer, answer, answer_table
from analysis.coverage import coverage_notes, sigma_columns
from analysis.fits import ScalingFits, scaling_fits
from analysis.memorisation import memorisation_summary, memorisation_table
from analysis.plots import PLOTS, plot_attention, plot_kernels, plot_scaling, plot_stability, read_kernel_benchmarks
from analysis.plots.sigma import plot_sigma
from analysis.plots.style import GUARD_MARK
from analysis.tables import (
    data_table,
    fit_table,
    foldbench_table,
    read_eval_summary,
    to_markdown,
    width_vs_depth_table,
    write_table,
)


@dataclass
class Report:
    """What :func:`build_report` wrote: the pages, figures (PNG + SVG) and tables (md, csv, tex) by name.

    ``answers``: the study's question answered at matched compute (:func:`analysis.compare.answer`), the
    page's first section. ``sections``: named tables shown in their own section rather than among the rest.
    """

    sweep: str
    out_dir: Path
    html: Path
    markdown: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)
    tables: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def files(self) -> list[Path]:
        return [self.html, self.markdown, *(p for ps in self.figures.values() for p in ps),
                *(p for ps in self.tables.values() for p in ps)]


ANSWER_EXTRA = ("val/loss_diffusion", "val/distogram_ce", "val/smooth_lddt")
ANSWER_METHOD = (
    "Each run's validation curve is interpolated linearly in log cumulative training FLOPs to the budget (the "
    "largest compute every compared run reached); a configuration's value is the mean over its seeds, with a "
    "95% t-interval whose spread is the seeds' own, floored at the recorded estimator noise; differences use "
    "Welch's interval. \"Resolved\" means at least two seeds per configuration and an interval that excludes 0.")


def build_report(
    frame: pd.DataFrame | None,
    out_dir: str | Path,
    sweep: str,
    plots: tuple[str, ...] = ("scaling",),
    metrics: tuple[str, ...] = ("val/lddt", "val/loss"),
    benchmarks: tuple[str | Path, ...] = (),
    eval_summary: str | Path | None = None,
    n_bootstrap: int = 200,
    notes: tuple[str, ...] = (),
) -> Report:
    """Write the figures in ``plots`` (of :data:`analysis.plots.PLOTS`), the tables and both pages.

    frame: tidy (run, step) table of the sweep (``analysis.collect.tidy``); None for a kernels/eval-only
    report. ``benchmarks``: kernel benchmark CSVs (needed by ``kernels``). ``eval_summary``: a ``harness eval``
    summary CSV for the FoldBench table. ``notes``: collection notes to print (e.g.
    ``analysis.collect.repeated_step_notes``).
    """
    unknown = [p for p in plots if p not in PLOTS]
    if unknown:
        raise ReportInputError(f"unknown plot(s) {unknown}; expected some of {list(PLOTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(sweep=sweep, out_dir=out, html=out / "report.html", markdown=out / "report.md",
                    notes=list(notes))
    fits: dict[str, ScalingFits] = {}
    budgets: dict[str, float] = {}
    if frame is not None:
        # The estimator's other deterministic terms answer the question too, at no fitting cost.
        answered = tuple(dict.fromkeys((*metrics, *(m for m in ANSWER_EXTRA if m in frame))))
        report.answers = answer(frame, sweep, answered)
        budgets = {a.metric: a.comparisons[0].budget for a in report.answers if a.comparisons}
        report.summary = _run_summary(frame)
        report.notes += coverage_notes(frame)
        for metric in metrics:
            if metric in frame and frame[metric].notna().any():
                fits[metric] = scaling_fits(frame, metric, n_bootstrap=n_bootstrap)
                report.notes += [f"{metric}: {n}" for n in fits[metric].notes]
    for name in plots:
        if name == "kernels":
            if not benchmarks:
                raise ReportInputError("--plot kernels needs benchmark CSVs (--benchmarks PATH)")
            report.figures[name] = plot_kernels(read_kernel_benchmarks(benchmarks), out)
            continue
        if frame is None:
            raise ReportInputError(f"--plot {name} needs recorded runs (a tracking URI or a runs folder)")
        if name == "scaling":
            report.figures[name] = plot_scaling(frame, out, metrics=metrics, fits=fits, budgets=budgets)
            if sigma_columns(frame):
                report.figures["sigma"] = plot_sigma(frame, out)
        elif name == "attention":
            report.figures[name] = plot_attention(frame, out)
        elif name == "stability":
            report.figures[name] = plot_stability(frame, out)
    if frame is not None:
        if report.answers:
            report.tables["answer"] = write_table(answer_table(report.answers), out, "answer",
                                                  "The study's question at matched training compute")
        report.tables["data"] = write_table(data_table(frame), out, "data",
                                            "Structures and tokens the runs trained and validated on")
        memorised = memorisation_table(frame)
        if not memorised.empty:
            report.tables["memorisation"] = write_table(
                memorised, out, "memorisation",
                "Generalisation gap: val/loss − train_probe/loss (fixed crops of training structures), at step 0 "
                "and at the end; its growth is what the run memorised")
            report.summary.append(memorisation_summary(memorised))
        report.tables["width_vs_depth"] = write_table(
            width_vs_depth_table(frame, metrics), out, "width_vs_depth",
            "Per configuration (seeds aggregated; ± is the 95% interval over seeds and estimator noise) "
            "beside the paper")
        table = fit_table(fits)
        if not table.empty:
            report.tables["fits"] = write_table(table, out, "fits",
                                                "Power-law fits with 95% bootstrap intervals, or why not fitted")
    if eval_summary is not None:
        report.tables["foldbench"] = write_table(foldbench_table(read_eval_summary(eval_summary)), out,
                                                 "foldbench", "FoldBench-style evaluation beside published rows")
    _write_pages(report)
    return report


def _run_summary(frame: pd.DataFrame) -> list[str]:
    """Sentences on what was run: configurations, seeds, guard-rescued runs."""
    runs = frame.drop_duplicates("run")
    seeds = runs.groupby("config")["run"].size()
    lines = [f"{len(runs)} runs in {len(seeds)} configurations; seeds per configuration: "
             + ", ".join(f"{c} {n}" for c, n in seeds.items()) + "."]
    if (seeds < 2).any():
        lines.append("Configurations with one seed have no seed-to-seed spread: their intervals are the "
                     "estimator noise alone (or n/a), and no comparison involving them is called resolved.")
    counts = runs[["train_structures", "train_tokens", "val_structures", "val_tokens"]].dropna().drop_duplicates()
    if len(counts) == 1:
        ts, tt, vs, vt = (int(v) for v in counts.iloc[0])
        lines.append(f"The study trained on {ts} structures ({tt} tokens) and validated on {vs} structures "
                     f"({vt} tokens), the same for every run that recorded it.")
    elif len(counts) > 1:
        lines.append(f"The runs recorded {len(counts)} different train/validation sets (table below): "
                     "their values are not comparable across those sets.")
    else:
        lines.append("The runs did not record how many structures and tokens they saw.")
    rescued_runs = runs[rescued(runs)]["name"].tolist()
    lines.append(f"{GUARD_MARK} Runs the stability guard rescued (skipped steps or rollbacks): "
                 + (", ".join(rescued_runs) if rescued_runs else "none") + "; they are dashed in the figures.")
    return lines


def _html_table(csv: Path) -> str:
    table = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    return table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)


def _md_table(csv: Path) -> str:
    return to_markdown(pd.read_csv(csv, keep_default_na=False, na_values=[""]))


def _csv(paths: list[Path]) -> Path:
    return next(p for p in paths if p.suffix == ".csv")


def _write_pages(report: Report) -> None:
    title = f"SeedFold scaling report: {report.sweep}"
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    own_section = ("answer", "data")
    if report.answers:
        md += ["## The question, answered", ""]
        body += ["<h2>The question, answered</h2>"]
        for study in dict.fromkeys(a.study.name for a in report.answers):
            question = next(a.study.question for a in report.answers if a.study.name == study)
            md += [f"### {study}", "", question, ""]
            body += [f"<h3>{html.escape(study)}</h3>", f"<p>{html.escape(question)}</p>", "<ul>"]
            for a in (a for a in report.answers if a.study.name == study):
                summary, *details = a.lines()
                md += [f"- **{summary}**", *[f"  - {line}" for line in details]]
                body += [f"<li><b>{html.escape(summary)}</b><ul>",
                         *[f"<li>{html.escape(line)}</li>" for line in details], "</ul></li>"]
            md += [""]
            body += ["</ul>"]
        md += [ANSWER_METHOD, "", _md_table(_csv(report.tables["answer"])), ""]
        body += [f"<p>{html.escape(ANSWER_METHOD)}</p>", _html_table(_csv(report.tables["answer"]))]
    if "data" in report.tables:
        md += ["## Data and runs", "", *report.summary, "", _md_table(_csv(report.tables["data"])), ""]
        body += ["<h2>Data and runs</h2>", *[f"<p>{html.escape(s)}</p>" for s in report.summary],
                 _html_table(_csv(report.tables["data"]))]
    for name, paths in report.figures.items():
        png = next(p for p in paths if p.suffix == ".png")
        md += [f"## Figure: {name}", "", f"![{name}]({png.name})", ""]
        data = base64.b64encode(png.read_bytes()).decode()
        body += [f"<h2>Figure: {html.escape(name)}</h2>",
                 f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">']
    for name, paths in report.tables.items():
        if name in own_section:
            continue
        md += [f"## Table: {name}", "", _md_table(_csv(paths)), ""]
        body += [f"<h2>Table: {html.escape(name)}</h2>", _html_table(_csv(paths))]
    if report.notes:
        md += ["## Notes", "", *[f"- {n}" for n in report.notes], ""]
        body += ["<h2>Notes</h2><ul>", *[f"<li>{html.escape(n)}</li>" for n in report.notes], "</ul>"]
    report.markdown.write_text("\n".join(md))
    style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;color:#222}"
             "img{max-width:100%}table{border-collapse:collapse;font-size:13px;margin-bottom:1.5em}"
             "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}th{background:#f3f3f3}")
    report.html.write_text(f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
                           f"</title><style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def log_report(report: Report, tracking_uri: str, experiment: str | None = None,
               experiment_id: str | None = None, run_name: str | None = None) -> str:
    """Log every report file as an artifact of a new MLflow run tagged ``kind=report`` and ``sweep``.

    Give ``experiment_id`` or ``experiment`` (a name, created when missing). Returns the MLflow run id.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        if experiment_id is None:
            if experiment is None:
                raise ReportInputError("log_report: give an experiment name or id")
            exp = client.get_experiment_by_name(experiment)
            experiment_id = exp.experiment_id if exp else client.create_experiment(experiment)
        run = client.create_run(experiment_id, tags={
            "kind": "report", "sweep": report.sweep, MLFLOW_RUN_NAME: run_name or f"report-{report.sweep}"})
        for path in report.files():
            client.log_artifact(run.info.run_id, str(path))
        client.set_terminated(run.info.run_id)
    except MlflowException as exc:
        raise ReportInputError(f"{tracking_uri}: cannot log the report ({exc.message})") from None
    return run.info.run_id
