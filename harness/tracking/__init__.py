"""Experiment tracking: MLflow stores, names of what is logged, the local UI and a test server."""
