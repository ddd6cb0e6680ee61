"""Completed-runs tables drawn from a known law plus noise, so the laws, backtests, advice and ladder fitted on
them have known answers. Nothing here is SeedFold output.

Each configuration of N parameters costs ``6·N`` FLOPs per example (one example per step), so a run at budget
C sees D = C / (6N) examples, and its loss is

    L(N, D) = E + A/N^α + B/D^β,   times exp(ε), ε ~ N(0, noise²) per run (independent seeds),

whose compute-optimal size is N_opt ∝ C^(β/(α+β)). Structure metrics follow the loss through a logistic:
lDDT = σ(a + b·L + ε'), contact precision = σ(a' + b'·L + ε''), with their own noise on the logit scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.completed import COLUMNS as C


@dataclass(frozen=True)
class Law:
    E: float = 1.5
    A: float = 100.0
    alpha: float = 0.35
    B: float = 200.0
    beta: float = 0.4

    def loss(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        return self.E + self.A * n**-self.alpha + self.B * d**-self.beta

    @property
    def allocation(self) -> float:
        """Exponent a of N_opt ∝ C^a when C = 6·N·D."""
        return self.beta / (self.alpha + self.beta)

    def n_opt(self, c: float) -> float:
        """The compute-optimal N at budget c (C = 6·N·D)."""
        ratio = (self.alpha * self.A) / (self.beta * self.B)
        return float((ratio * (c / 6.0) ** self.beta) ** (1.0 / (self.alpha + self.beta)))


LAW = Law()
CONFIGS = {"xs": 1e5, "s": 2.5e5, "m": 6e5, "l": 1.5e6, "xl": 4e6, "xxl": 1e7}
BUDGETS = tuple(np.geomspace(1e12, 1e14, 6))
LDDT = (4.0, -1.5)  # lDDT = σ(4 − 1.5·L)
CONTACT = (6.0, -2.5)


def completed_table(*, law: Law = LAW, configs: dict[str, float] | None = None,
                    budgets: tuple[float, ...] = BUDGETS, step_budgets: tuple[int, ...] = (), seeds: int = 3,
                    noise: float = 0.005, metric_noise: float = 0.05, seed: int = 0,
                    shift: dict[float, float] | None = None) -> pd.DataFrame:
    """One row per run (every configuration × budget × seed) in the completed-runs columns.

    ``budgets``: FLOPs budgets; ``step_budgets``: step budgets (``budget_flops`` NaN); ``shift``: budget →
    factor multiplying the loss of every run at that budget (a regime the law does not know).
    """
    configs = CONFIGS if configs is None else configs
    rng = np.random.default_rng(seed)
    rows = []
    designs = [(b, None) for b in budgets] + [(None, s) for s in step_budgets]
    for flops_budget, step_budget in designs:
        for name, n in configs.items():
            per_step = 6.0 * n
            steps = round(flops_budget / per_step) if flops_budget is not None else step_budget
            for s in range(seeds):
                loss = float(law.loss(n, steps) * np.exp(rng.normal(0.0, noise)))
                loss *= (shift or {}).get(flops_budget, 1.0)
                key = f"{name}-{flops_budget or step_budget:.3g}-s{s}"
                rows.append({
                    C.run: key, C.config: name, C.group: name, C.seed: s, C.params: n,
                    C.params_non_embedding: 0.9 * n, C.flops_per_step: per_step,
                    C.budget_flops: np.nan if flops_budget is None else flops_budget, C.budget_steps: steps,
                    C.steps: steps, C.flops: steps * per_step, C.examples: float(steps),
                    C.device_s: steps * n * 1e-7, C.lr: 1e-3, C.loss: loss, C.loss_noise: 0.002,
                    C.lddt: _score(LDDT, loss, metric_noise, rng), C.contact_precision: _score(CONTACT, loss,
                                                                                               metric_noise, rng),
                })
    return pd.DataFrame(rows)


def _score(coefs: tuple[float, float], loss: float, noise: float, rng: np.random.Generator) -> float:
    a, b = coefs
    return float(1.0 / (1.0 + np.exp(-(a + b * loss + rng.normal(0.0, noise)))))


def structure_table(table: pd.DataFrame, metric: str = "val/loss", n_structures: int = 8, spread: float = 0.3,
                    seed: int = 1) -> pd.DataFrame:
    """Per-structure values whose mean over structures is each run's value: structure j of every run is the
    run's value times (1 + spread·z_j), z centred over structures (a fixed validation set)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, n_structures)
    z -= z.mean()
    rows = [{"run": run, "structure": f"st{j}", "metric": metric, "value": value * (1 + spread * z[j])}
            for run, value in zip(table[C.run], table[metric], strict=True) for j in range(n_structures)]
    return pd.DataFrame(rows)
