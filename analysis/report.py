"""One report per sweep, read in a minute: the generated headline, the summary table of the primary metric
(budget × comparison × verdict), the plot of the headline differences against budget; then, collapsed, the
method, the secondary metrics, every comparison with both intervals, which run was read at each budget, the
learning-rate scan, the structure metrics along training, the laws, the curves and the data. Written as a
self-contained HTML page and a Markdown page, optionally logged to MLflow as the artifacts of a report run (tag
``kind=report``) beside the study's runs.

Every comparison reads runs that completed their own schedule at the compared budget
(:mod:`analysis.study`), on a named cost axis, with Welch's and a bootstrap interval and Holm–Bonferroni per
family (:mod:`analysis.inference`); the headline says only what is resolved (:mod:`analysis.answer`).

    report = build_report(frame, "reports/width_vs_depth", sweep="width_vs_depth", plots=("scaling",))
    log_report(report, tracking_uri="http://127.0.0.1:5000", experiment="seedfold-scaling")
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis.answer import StudyAnswer, study_answer
from analysis.collect import ReportInputError, rescued
from analysis.coverage import coverage_notes, sigma_columns
from analysis.inference import ALPHA
from analysis.memorisation import memorisation_summary, memorisation_table
from analysis.plots import PLOTS, plot_attention, plot_kernels, plot_scaling, plot_stability, read_kernel_benchmarks
from analysis.plots.sigma import plot_sigma
from analysis.plots.style import GUARD_MARK
from analysis.study import AXIS_FLOPS, AXIS_SECONDS, check_one_recipe, completed_runs, incomplete_runs, read_at
from analysis.tables import (
    data_table,
    foldbench_table,
    read_eval_summary,
    to_markdown,
    width_vs_depth_table,
    write_table,
)
from analysis.trajectory import structure_trajectories, trajectory_summary, trajectory_table

if TYPE_CHECKING:
    from analysis.laws_report import LawsSection

SECONDARY = ("val/lddt", "val/contact_precision", "val/contact_precision_sep12", "val/smooth_lddt",
             "val/loss_diffusion", "val/distogram_ce")
METHOD = (
    "Every comparison reads runs that completed their own learning-rate schedule at the compared budget (a "
    "warmup-stable-decay run cooled down at its last step), never a run part-way through a longer one. Budgets are "
    "on a named cost axis: matched compute (analytic training FLOPs), matched steps, or matched device-seconds "
    "(each configuration's completed FLOPs budgets interpolated per seed in log measured seconds, within their "
    "range). A configuration's value is the mean over its seeds (spread floored at the recorded estimator noise); a "
    "difference gets Welch's 95% interval and a hierarchical bootstrap interval (seeds, and validation structures "
    "when recorded). The comparisons of one metric at one budget are one family: Welch p-values are Holm-adjusted "
    f"within it. Resolved = at least two seeds each, Holm p < {ALPHA:g} and a bootstrap interval excluding 0. "
    "val/loss is the primary metric; val/loss_diffusion and val/distogram_ce are its own terms (val/loss = 4 x "
    "diffusion + 0.03 x distogram), shown but not separate findings; the structure metrics are secondary.")


@dataclass
class Report:
    """What :func:`build_report` wrote: the pages, figures (PNG + SVG) and tables (md, csv, tex) by name."""

    sweep: str
    out_dir: Path
    html: Path
    markdown: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)
    tables: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    answers: list[StudyAnswer] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)
    trajectory: list[str] = field(default_factory=list)
    laws: list[str] = field(default_factory=list)
    sections: list[tuple[str, list[str], list[str]]] = field(default_factory=list)  # title, table names, figures

    def files(self) -> list[Path]:
        return [self.html, self.markdown, *(p for ps in self.figures.values() for p in ps),
                *(p for ps in self.tables.values() for p in ps)]


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
    structures: pd.DataFrame | None = None,
    params: pd.DataFrame | None = None,
) -> Report:
    """Write the figures in ``plots`` (of :data:`analysis.plots.PLOTS`), the tables and both pages.

    frame: tidy (run, step) table of the sweep (``analysis.collect.tidy``); None for a kernels/eval-only report.
    structures: per-structure values (``analysis.collect.read_structure_metrics``), for bootstrap intervals over
    structures. params: ``analysis.collect.run_table``, to refuse runs of different recipes. ``notes``: collection
    notes to print. Raises ReportInputError for runs of several profiles or recipes."""
    unknown = [p for p in plots if p not in PLOTS]
    if unknown:
        raise ReportInputError(f"unknown plot(s) {unknown}; expected some of {list(PLOTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(sweep=sweep, out_dir=out, html=out / "report.html", markdown=out / "report.md",
                    notes=list(notes))
    if frame is not None:
        check_one_recipe(frame, params)
        _answer(report, frame, metrics, structures)
        report.summary = _run_summary(frame)
        report.notes += coverage_notes(frame)
    for name in plots:
        if name == "kernels":
            if not benchmarks:
                raise ReportInputError("--plot kernels needs benchmark CSVs (--benchmarks PATH)")
            report.figures[name] = plot_kernels(read_kernel_benchmarks(benchmarks), out)
            continue
        if frame is None:
            raise ReportInputError(f"--plot {name} needs recorded runs (a tracking URI or a runs folder)")
        if name == "scaling":
            # Training curves of each configuration's longest run; laws are fitted on complete runs only (below).
            trunks = frame[frame["study_role"].isin(["trunk", ""])] if "study_role" in frame else frame
            report.figures["curves"] = plot_scaling(
                trunks, out, metrics=metrics, draw_laws=False, stem="curves",
                finals_title="at the end of each configuration's longest run\n(matched compute and steps: the answer)")
            if sigma_columns(frame):
                report.figures["sigma"] = plot_sigma(frame, out)
        elif name == "attention":
            report.figures[name] = plot_attention(frame, out)
        elif name == "stability":
            report.figures[name] = plot_stability(frame, out)
    if frame is not None:
        _laws(report, frame, structures, n_bootstrap)
        _detail_tables(report, frame, metrics)
    if eval_summary is not None:
        report.tables["foldbench"] = write_table(foldbench_table(read_eval_summary(eval_summary)), out,
                                                 "foldbench", "FoldBench-style evaluation beside published rows")
        report.sections.append(("FoldBench-style evaluation", ["foldbench"], []))
    _write_pages(report)
    return report


def _answer(report: Report, frame: pd.DataFrame, metrics: tuple[str, ...], structures: pd.DataFrame | None) -> None:
    """The answer: headline, summary tables, differences figure, and the collapsed detail of every comparison."""
    from analysis.plots.differences import plot_differences

    out = report.out_dir
    wanted = tuple(dict.fromkeys((*metrics, *(m for m in SECONDARY if m in frame))))
    try:
        report.answers = study_answer(frame, report.sweep, wanted, structures=structures)
    except ReportInputError as exc:
        report.headline = [f"Nothing compared: {exc}."]
        return
    left_out = incomplete_runs(frame)
    if left_out:
        report.notes.append(f"not compared (schedule not completed: running, failed or stopped early): "
                            f"{', '.join(left_out)}")
    for answer in report.answers:
        name = answer.study.name
        report.headline += answer.headline()
        report.notes += [f"{name}: {n}" for n in answer.notes]
        for axis in answer.axes():
            stem = f"answer_{name}_{axis.split()[1].strip('()').replace('-', '_').lower()}"
            report.tables[stem] = write_table(answer.summary_table(axis), out, stem,
                                              f"{answer.primary} at {axis}: a − b with Welch's 95% interval "
                                              "(✓ resolved, · not); each run complete at its budget")
        if answer.families:
            report.figures[f"differences_{name}"] = plot_differences(answer, out, stem=f"differences_{name}")
        secondary = [m for m in answer.metrics if m != answer.primary]
        names = []
        for metric in secondary:
            for axis in answer.axes(metric):
                if axis == AXIS_SECONDS:
                    continue
                stem = f"secondary_{name}_{metric.split('/')[-1]}_{axis.split()[1].strip('()').lower()}"
                report.tables[stem] = write_table(answer.summary_table(axis, metric), out, stem,
                                                  f"{metric} (secondary) at {axis}")
                names.append(stem)
        report.sections.append((f"Secondary metrics ({name})", names, []))
        detail = pd.concat([answer.detail_table(m) for m in answer.metrics], ignore_index=True)
        stem = f"comparisons_{name}"
        report.tables[stem] = write_table(detail, out, stem, "Every comparison: both intervals, p-values, verdict")
        report.sections.append((f"Every comparison ({name})", [stem], []))
    completed = report.answers[0].completed if report.answers else completed_runs(frame)
    reads = [read_at(completed, f.point).assign(budget=f.point.label)
             for f in (report.answers[0].of(report.answers[0].primary, axis) if report.answers else [])
             for axis in [f.point.axis] if axis != AXIS_SECONDS]
    reads = [r for r in reads if not r.empty]
    if reads:
        table = pd.concat(reads, ignore_index=True)[["budget", "config", "seed", "name", "steps", "lr", "flops",
                                                     "device_s"]]
        report.tables["read_at"] = write_table(table, out, "read_at", "Which run each comparison read: its steps, "
                                               "lr, FLOPs and measured device-seconds at the end of its schedule")
        report.sections.append(("Which run was read at each budget", ["read_at"], []))
    _lr_scan(report, completed)
    trajectories = structure_trajectories(frame)
    if not trajectories.empty:
        report.trajectory = trajectory_summary(trajectories)
        report.tables["structure_trajectory"] = write_table(
            trajectory_table(trajectories), out, "structure_trajectory",
            "Structure metrics along training: step 0, peak, end and the recorded noise of each run")
        report.sections.append(("Structure metrics along training", ["structure_trajectory"], []))


def _lr_scan(report: Report, completed: pd.DataFrame) -> None:
    from analysis.plots.lr_scan import plot_lr_scan, scan_points, scan_table

    if completed.empty or not completed["scan"].any():
        return
    points = scan_points(completed)
    report.tables["lr_scan"] = write_table(scan_table(points), report.out_dir, "lr_scan",
                                           "Learning-rate scan: final val/loss at the scan budget (± 95%: seeds' "
                                           "spread or estimator noise) and the rate each configuration trains at")
    report.figures["lr_scan"] = plot_lr_scan(points, report.out_dir)
    report.sections.append(("Learning-rate scan", ["lr_scan"], ["lr_scan"]))


def _laws(report: Report, frame: pd.DataFrame, structures: pd.DataFrame | None, n_bootstrap: int) -> None:
    """Laws, backtests, compute-optimal advice and the loss → structure mapping, from complete runs only."""
    from analysis.completed import completed_runs as laws_table
    from analysis.laws_report import laws_section

    try:
        table = laws_table(frame)
    except ReportInputError as exc:
        report.notes.append(f"laws: not fitted: {exc}")
        return
    section = laws_section(table, out_dir=report.out_dir, structures=structures,
                           n_bootstrap=max(n_bootstrap, 1000))
    out = report.out_dir
    report.tables["laws"] = write_table(section.law_rows(), out, "laws", "Scaling laws on complete runs (Huber on "
                                        "log residuals, variable projection), each with its backtests, or why not "
                                        "fitted")
    names = ["laws"]
    if section.optima:
        report.tables["optima"] = write_table(_optima_with_family_verdict(section, report.answers), out, "optima",
                                              "Compute-optimal configuration per FLOPs budget, with its resampled "
                                              "interval; the verdict that counts is the pairwise one of the answer "
                                              "(Holm over the budget's pairs)")
        names.append("optima")
    if section.ladders:
        report.tables["ladder"] = write_table(section.ladder_rows(), out, "ladder", "Structure metric as a function "
                                              "of val/loss across complete runs (the two-step ladder)")
        names.append("ladder")
    report.figures.update(section.figures)
    report.laws = section.lines()
    report.sections.append(("Scaling laws and compute-optimal advice", names, list(section.figures)))


def _optima_with_family_verdict(section: LawsSection, answers: list[StudyAnswer]) -> pd.DataFrame:
    """The optima table with its lone best-vs-runner-up verdict renamed for what it is, and the answer's verdict of
    the same pair at the same budget (Welch, Holm over the budget's family, bootstrap) beside it."""
    table = section.optima_rows().rename(columns={"verdict": "best vs runner-up alone (no multiplicity correction)"})
    families = {f.point.value: f for a in answers for f in a.of(a.primary, AXIS_FLOPS)}
    verdicts = []
    for optimum in section.optima:  # the table's rows, in order
        family = families.get(optimum.budget)
        pair = {optimum.best, optimum.runner_up}
        c = next((c for c in family.comparisons if {c.a, c.b} == pair), None) if family else None
        verdicts.append(c.verdict() if c is not None else "")
    return table.assign(**{"pairwise verdict (the answer's)": verdicts})


def _detail_tables(report: Report, frame: pd.DataFrame, metrics: tuple[str, ...]) -> None:
    out = report.out_dir
    figures = [n for n in ("curves", "sigma") if n in report.figures]
    if figures:
        report.sections.append(("Training curves", [], figures))
    report.tables["data"] = write_table(data_table(frame), out, "data",
                                        "Structures and tokens the runs trained and validated on")
    report.tables["width_vs_depth"] = write_table(
        width_vs_depth_table(frame, metrics), out, "width_vs_depth",
        "Per configuration at the end of each run's own schedule (seeds aggregated; ± is the 95% interval over "
        "seeds and estimator noise) beside the paper")
    names = ["data", "width_vs_depth"]
    memorised = memorisation_table(frame)
    if not memorised.empty:
        report.tables["memorisation"] = write_table(
            memorised, out, "memorisation",
            "Generalisation gap: val/loss − train_probe/loss (fixed crops of training structures), at step 0 "
            "and at the end; its growth is what the run memorised")
        names.append("memorisation")
        summary = memorisation_summary(memorised)
        if summary:
            report.summary.append(summary)
    report.sections.append(("Data and runs", names, []))
    for name in ("attention", "stability", "kernels"):
        if name in report.figures:
            report.sections.append((f"Figure: {name}", [], [name]))


def _run_summary(frame: pd.DataFrame) -> list[str]:
    """Sentences on what was run: configurations, seeds, profile, guard-rescued runs."""
    runs = frame.drop_duplicates("run")
    seeds = runs.groupby("config")["run"].size()
    profile = next((p for p in runs.get("profile", pd.Series(dtype=str)).dropna() if p), "")
    lines = [f"{len(runs)} runs in {len(seeds)} configurations" + (f" (profile {profile})" if profile else "")
             + "; runs per configuration: " + ", ".join(f"{c} {n}" for c, n in seeds.items()) + "."]
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
    devices = sorted({d for d in runs.get("device", pd.Series(dtype=str)).dropna() if d})
    if devices:
        lines.append("Device-seconds were measured on: " + "; ".join(devices) + ".")
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


def _png(report: Report, name: str) -> tuple[str, str]:
    png = next(p for p in report.figures[name] if p.suffix == ".png")
    return png.name, base64.b64encode(png.read_bytes()).decode()


def _caption(paths: list[Path]) -> str:
    md = next((p for p in paths if p.suffix == ".md"), None)
    first = md.read_text().splitlines()[0] if md is not None else ""
    return first.strip("*") if first.startswith("**") else ""


def _write_pages(report: Report) -> None:
    title = f"SeedFold scaling report: {report.sweep}"
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if report.headline:
        md += ["## The answer", "", *[f"**{h}**" + "\n" for h in report.headline]]
        body += ["<h2>The answer</h2>", *[f"<p class='headline'><b>{html.escape(h)}</b></p>" for h in report.headline]]
    for name, paths in report.tables.items():
        if name.startswith("answer_"):
            caption = _caption(paths)
            md += [f"*{caption}*", "", _md_table(_csv(paths)), ""]
            body += [f"<p><i>{html.escape(caption)}</i></p>", _html_table(_csv(paths))]
    for name in report.figures:
        if name.startswith("differences_"):
            file, data = _png(report, name)
            md += [f"![headline differences]({file})", ""]
            body += [f'<img alt="headline differences" src="data:image/png;base64,{data}">']
    if report.trajectory:
        md += ["", *[f"- {t}" for t in report.trajectory], ""]
        body += ["<ul>", *[f"<li>{html.escape(t)}</li>" for t in report.trajectory], "</ul>"]
    sections = [("How to read it", [], [])] + report.sections
    for heading, tables, figures in sections:
        md += [f"<details><summary>{heading}</summary>", ""]
        body += [f"<details><summary><b>{html.escape(heading)}</b></summary>"]
        if heading == "How to read it":
            md += [METHOD, ""]
            body += [f"<p>{html.escape(METHOD)}</p>"]
        if heading.startswith("Scaling laws"):
            md += [*[f"- {line}" for line in report.laws], ""]
            body += ["<ul>", *[f"<li>{html.escape(line)}</li>" for line in report.laws], "</ul>"]
        if heading == "Data and runs":
            md += [*report.summary, ""]
            body += [f"<p>{html.escape(s)}</p>" for s in report.summary]
        for name in tables:
            caption = _caption(report.tables[name])
            md += [f"*{caption}*", "", _md_table(_csv(report.tables[name])), ""]
            body += [f"<p><i>{html.escape(caption)}</i></p>", _html_table(_csv(report.tables[name]))]
        for name in figures:
            file, data = _png(report, name)
            md += [f"![{name}]({file})", ""]
            body += [f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">']
        md += ["</details>", ""]
        body += ["</details>"]
    if report.notes:
        md += ["<details><summary>Notes</summary>", "", *[f"- {n}" for n in report.notes], "", "</details>", ""]
        body += ["<details><summary><b>Notes</b></summary><ul>",
                 *[f"<li>{html.escape(n)}</li>" for n in report.notes], "</ul></details>"]
    report.markdown.write_text("\n".join(md))
    style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;color:#222}"
             "img{max-width:100%}table{border-collapse:collapse;font-size:13px;margin-bottom:1.5em}"
             "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}th{background:#f3f3f3}"
             "details{margin:0.6em 0}summary{cursor:pointer;font-size:1.1em}.headline{font-size:1.05em}")
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
