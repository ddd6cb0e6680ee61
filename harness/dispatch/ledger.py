"""A sweep's ledger, ``<runs_dir>/<sweep>/sweep.json``: which submitit job (executor, id, folder, log) ran
each run, and how often it was submitted. ``harness status`` and ``--cancel`` read it; the driver writes it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.tracking.atomic import atomic_write_text

LEDGER_FILE = "sweep.json"


@dataclass
class JobRecord:
    executor: str  # "local" | "slurm"
    job_id: str
    folder: str  # submitit folder
    log: str  # stdout log of the latest attempt (stderr is beside it)
    attempts: int = 1
    label: str = ""
    error: str | None = None  # last failure, with the log tail

    @property
    def stderr(self) -> str:
        return self.log[: -len(".out")] + ".err" if self.log.endswith(".out") else self.log


@dataclass
class Ledger:
    path: Path
    jobs: dict[str, JobRecord] = field(default_factory=dict)  # by run key

    @classmethod
    def load(cls, sweep_dir: Path) -> Ledger:
        path = Path(sweep_dir) / LEDGER_FILE
        if not path.exists():
            return cls(path)
        raw: dict[str, Any] = json.loads(path.read_text())
        return cls(path, {key: JobRecord(**rec) for key, rec in raw.get("jobs", {}).items()})

    def save(self) -> None:
        blob = {"jobs": {key: asdict(rec) for key, rec in sorted(self.jobs.items())}}
        atomic_write_text(self.path, json.dumps(blob, indent=2))
