"""The studies a sweep can answer: which groups of runs are compared, pair by pair, and the question.

Groups are the values of a tidy frame's column ``by``: the paper configuration a run's preset names (``group``,
:func:`group_column`) for width versus depth, the triangle-attention variant for the attention ablation. The
comparisons themselves read complete runs only (:mod:`analysis.study`, :mod:`analysis.inference`,
:mod:`analysis.answer`).

    for study in studies_for(frame, "width_vs_depth"): print(study.name, study.pairs)
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Study:
    """Pairs of groups to compare: ``a − b`` for each ``(a, b)`` in ``pairs``; groups are the values of the
    tidy frame's column ``by`` (``group`` is derived by :func:`group_column`)."""

    name: str
    by: str
    pairs: tuple[tuple[str, str], ...]
    question: str
    all_pairs: bool = False  # compare every pair of the groups present, not only ``pairs``


WIDTH_VS_DEPTH = Study(
    "width_vs_depth", "group",
    tuple((wide, other) for wide in ("medium", "large") for other in ("deep_pairformer", "deep_structure", "base")),
    "How should a fixed training budget be spent: a wider pair track (medium, large), a deeper Pairformer "
    "(deep_pairformer) or a deeper structure module (deep_structure) than base? Every pair is compared.",
    all_pairs=True)
ATTENTION = Study(
    "attention_ablation", "attention",
    (("additive", "vanilla"), ("gated", "vanilla"), ("gated", "additive")),
    "At matched training compute, how do the linear triangle-attention forms (additive, gated) compare with "
    "softmax (vanilla) and with each other?")
STUDIES = (WIDTH_VS_DEPTH, ATTENTION)


def group_column(frame: pd.DataFrame) -> pd.Series:
    """Study group of each row: the paper configuration the preset names (``mini_medium`` → ``medium``),
    else the configuration name."""
    from analysis.tables import paper_row_for

    def group(preset: str, config: str) -> str:
        row = paper_row_for(str(preset))
        return row.name if row is not None else str(config)

    return pd.Series([group(p, c) for p, c in zip(frame["preset"], frame["config"], strict=True)],
                     index=frame.index)


def studies_for(frame: pd.DataFrame, sweep: str) -> list[Study]:
    """The studies that apply to the runs: the sweep's own study by name, else every study with at least one
    pair whose both groups were run. Pairs with a group not run are dropped."""
    named = [s for s in STUDIES if s.name == sweep]
    out = []
    for study in named or STUDIES:
        present = set(frame[study.by].dropna().astype(str)) if study.by in frame else set()
        pairs = tuple(p for p in study.pairs if p[0] in present and p[1] in present)
        if pairs:
            out.append(Study(study.name, study.by, pairs, study.question, study.all_pairs))
    return out
