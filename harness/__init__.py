"""The SeedFold scaling harness: configs, data, training, sweeps, tuning, tracking and dispatch."""

__version__ = "0.1.0"
