"""Sweeps: a YAML grid of training runs, expanded into validated run specs, dispatched and resumed."""
