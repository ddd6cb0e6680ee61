"""The run folder's metric record, ``metrics.csv`` (long format: ``step,key,value``): the durable copy of
everything a run logs, from which MLflow is filled (``harness.tracking.sync``).

Each (step, key) appears at most once, and steps never decrease down the file. Two rules keep it so:

- **On resume the record is cut back to the checkpoint's step.** A run killed at step 117 after its checkpoint
  at step 110 retrains steps 111..117 from the checkpoint; the rows it wrote for them before the kill belong to
  weights that no longer exist, so they are dropped (and the retrained values are written once). Cutting rather
  than de-duplicating in the reader keeps every consumer (analysis, Optuna's trial reader, MLflow) simple.
- **A (step, key) already recorded is not written again** (the validation at the checkpoint's step may run again
  after a resume; the guard's counters may be logged twice at one step). The first value stays.

Appends are flushed per call, so a SIGKILL loses at most a line being written; a torn last line is dropped when
the record is reopened.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from harness.tracking.run_folder import atomic_write_text

log = logging.getLogger(__name__)
HEADER = "step,key,value\n"


def parse_line(line: str) -> tuple[int, str, float] | None:
    """``(step, key, value)`` of one complete data line, or None for the header or a torn line."""
    parts = line.rstrip("\n").split(",")
    if len(parts) != 3 or parts[0] == "step":
        return None
    try:
        return int(parts[0]), parts[1], float(parts[2])
    except ValueError:
        return None


class MetricRecord:
    """Append-only ``metrics.csv`` with the exactly-once rules above. Thread-safe for one writer and readers."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._last_step = -1
        self._keys_at_last_step: set[str] = set()
        self._scan()

    def _scan(self) -> None:
        """Learn the last step (and its keys) already in the file."""
        if not self.path.exists():
            return
        with open(self.path) as f:
            for line in f:
                row = parse_line(line) if line.endswith("\n") else None
                if row is None:
                    continue
                step, key, _ = row
                if step > self._last_step:
                    self._last_step, self._keys_at_last_step = step, set()
                self._keys_at_last_step.add(key)

    def truncate_after(self, step: int) -> int:
        """Drop every row with a step above ``step`` (and a torn last line); returns the rows dropped.

        Atomic: the kept rows are written to a new file that replaces the old one.
        """
        if not self.path.exists():
            return 0
        kept, dropped = [HEADER], 0
        with self._lock:
            with open(self.path) as f:
                for line in f:
                    row = parse_line(line) if line.endswith("\n") else None
                    if row is None:
                        dropped += line != HEADER
                        continue
                    if row[0] <= step:
                        kept.append(line)
                    else:
                        dropped += 1
            if dropped:
                atomic_write_text(self.path, "".join(kept))
            self._last_step, self._keys_at_last_step = -1, set()
            self._scan()
        if dropped:
            log.info("%s: dropped %d rows logged after the checkpoint at step %d", self.path, dropped, step)
        return dropped

    def append(self, step: int, metrics: dict[str, float]) -> dict[str, float]:
        """Write the (step, key) pairs not yet recorded; returns what was written."""
        with self._lock:
            if step < self._last_step:
                log.warning("%s: step %d logged after step %d; not recorded", self.path, step, self._last_step)
                return {}
            if step > self._last_step:
                self._last_step, self._keys_at_last_step = step, set()
            new = {k: v for k, v in metrics.items() if k not in self._keys_at_last_step}
            if not new:
                return {}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            with open(self.path, "a") as f:
                if fresh:
                    f.write(HEADER)
                f.write("".join(f"{step},{key},{value!r}\n" for key, value in new.items()))
                f.flush()  # in the kernel's hands now: a SIGKILL of this process cannot lose it
            self._keys_at_last_step.update(new)
            return new


def read_rows(path: Path, offset: int) -> list[tuple[int, str, float, int]]:
    """Complete data rows from byte ``offset`` on, each as ``(step, key, value, offset after its line)``."""
    if not path.exists():
        return []
    with open(path, "rb") as f:
        f.seek(offset)
        chunk = f.read()
    out, pos = [], offset
    for line in chunk.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # being written; read next time
        pos += len(line)
        row = parse_line(line.decode())
        if row is not None:
            out.append((*row, pos))
    return out
