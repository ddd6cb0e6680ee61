"""The headline differences against budget: for each cost axis, every configuration's difference from the
reference configuration (base) on the primary metric, with its Welch 95 % interval, at each budget where both
completed their schedule. Filled markers: resolved (Holm-adjusted, bootstrap interval excluding 0); open: not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from analysis.answer import StudyAnswer
from analysis.inference import higher_is_better
from analysis.plots.style import new_figure, save, styled

COLOURS = {"medium": "#4a90c8", "large": "#1f4e79", "deep_pairformer": "#e08a2c", "deep_structure": "#3a9a4a",
           "additive": "#8e44ad", "gated": "#c0392b"}
LOSS_LABELS = {"val/loss": "val/loss = 4 x diffusion loss + 0.03 x distogram CE, on the validation set"}


@styled
def plot_differences(answer: StudyAnswer, out_dir: str | Path, reference: str = "base",
                     stem: str = "differences") -> list[Path]:
    """One panel per cost axis of the primary metric: ``config − reference`` against budget (log x)."""
    metric = answer.primary
    axes_names = answer.axes(metric)
    fig, axes = new_figure(1, max(1, len(axes_names)), width=4.8, height=3.8)
    handles: dict[str, Line2D] = {}
    ref = reference if any(reference in (c.a, c.b) for f in answer.families for c in f.comparisons) else None
    for ax, axis in zip(axes[0], axes_names, strict=False):
        families = answer.of(metric, axis)
        ref_here = ref or families[0].comparisons[0].b
        others = sorted({g for f in families for c in f.comparisons for g in (c.a, c.b)} - {ref_here})
        offsets = np.linspace(-0.025, 0.025, max(1, len(others)))
        for off, group in zip(offsets, others, strict=True):
            xs, ys, lo, hi, done = [], [], [], [], []
            for f in families:
                c = next((c for c in f.comparisons if {c.a, c.b} == {group, ref_here}), None)
                if c is None:
                    continue
                sign = 1.0 if c.a == group else -1.0
                d = c.diff
                xs.append(f.point.value * 10**off)
                ys.append(sign * d.value)
                lo.append(sign * d.value - (d.low if sign > 0 else -d.high))
                hi.append((d.high if sign > 0 else -d.low) - sign * d.value)
                done.append(c.resolved)
            if not xs:
                continue
            colour = COLOURS.get(group, "#555555")
            ax.errorbar(xs, ys, yerr=[lo, hi], color=colour, lw=1.2, capsize=3, fmt="none")
            ax.plot(xs, ys, color=colour, lw=0.8, alpha=0.6)
            for x, y, r in zip(xs, ys, done, strict=True):
                ax.plot([x], [y], "o", color=colour, mfc=colour if r else "white", ms=6)
            handles[group] = Line2D([], [], color=colour, marker="o", label=f"{group} − {ref_here}")
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xscale("log")
        budgets = [f.point.value for f in families]
        ax.set_xticks(budgets, [f.point.label.replace(" ", "\n", 1) for f in families], fontsize=8)
        ax.xaxis.set_minor_locator(NullLocator())
        if len(budgets) == 1:
            ax.set_xlim(budgets[0] / 1.25, budgets[0] * 1.25)
        ax.set_xlabel(f"budget ({axis}); every run complete at its budget", fontsize=8)
        better = "higher" if higher_is_better(metric) else "lower"
        ax.set_ylabel(f"{metric}: configuration − {ref_here}\n({better} = better than {ref_here})", fontsize=8)
        ax.set_title(LOSS_LABELS.get(metric, metric), fontsize=8)
    handles["resolved"] = Line2D([], [], color="grey", marker="o", lw=0, label="resolved (Holm, bootstrap)")
    handles["not"] = Line2D([], [], color="grey", marker="o", mfc="white", lw=0, label="not resolved")
    fig.legend(handles=list(handles.values()), loc="outside lower center", ncol=min(4, len(handles)), fontsize=8,
               frameon=False)
    return save(fig, out_dir, stem)
