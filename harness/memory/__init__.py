"""Traced training-step memory: the cache of traces, the per-stage plan (chunking chosen from the trace) and the
fit check before submission."""
