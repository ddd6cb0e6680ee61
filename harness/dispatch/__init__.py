"""Dispatch: SLURM resource profiles, submitit executors (local or SLURM), the resumable training job."""
