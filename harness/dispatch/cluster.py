"""Is there a SLURM cluster to submit to? Decides the default executor of a sweep."""

from __future__ import annotations

import shutil
import subprocess


def slurm_available(timeout_s: float = 10.0) -> bool:
    """True when ``sbatch`` is on PATH and the controller answers ``sinfo`` within ``timeout_s`` seconds."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, timeout=timeout_s,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def default_executor_kind() -> str:
    """``"slurm"`` where a cluster answers, else ``"local"``."""
    return "slurm" if slurm_available() else "local"
