"""Tuning: Optuna studies over a YAML search space, trials trained as runs and tracked as nested MLflow runs."""
