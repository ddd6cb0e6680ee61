"""Figures of a sweep (matplotlib, Agg backend), each written as PNG and SVG.

- :func:`plot_scaling` — validation metric and loss versus step, cumulative FLOPs and parameters, with fitted
  power laws (the paper's Figure 2: width versus deeper Pairformer versus deeper structure module).
- :func:`plot_attention` — vanilla / additive / gated curves per validation metric (Figure 5 style).
- :func:`plot_stability` — gradient norm and loss per step, with and without the lr/warmup fix.
- :func:`plot_kernels` — time and memory versus sequence length from benchmark CSVs (Figure 3b style).
"""

from analysis.plots.attention import plot_attention
from analysis.plots.kernels import plot_kernels, read_kernel_benchmarks
from analysis.plots.scaling import plot_scaling
from analysis.plots.stability import plot_stability

PLOTS = ("scaling", "attention", "stability", "kernels")

__all__ = ["PLOTS", "plot_attention", "plot_kernels", "plot_scaling", "plot_stability",
           "read_kernel_benchmarks"]
