"""Read results back: structure metrics, scaling-law fits, plots and tables. Never trains."""
