"""The run folder's metric record, ``metrics.csv`` (long format: ``step,key,value,time_ms``): the durable copy of
everything a run logs, from which MLflow is filled (``harness.tracking.sync``). ``time_ms`` is when the trainer
logged the row (Unix ms), so MLflow's timestamps are training times, not upload times; a record begun before the
column existed keeps its three columns (its rows go to MLflow with the upload time).

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
import time
from pathlib import Path
from typing import NamedTuple

from harness.tracking.run_folder import atomic_write_text

log = logging.getLogger(__name__)
HEADER = "step,key,value,time_ms\n"
UNTIMED_HEADER = "step,key,value\n"  # records begun before time_ms
HEADERS = (HEADER, UNTIMED_HEADER)


class Row(NamedTuple):
    step: int
    key: str
    value: float
    end: int  # byte offset after the row's line
    time_ms: int | None  # when it was logged; None in an untimed record


def parse_line(line: str) -> tuple[int, str, float, int | None] | None:
    """``(step, key, value, time_ms or None)`` of one complete data line, or None for a header or a torn line."""
    parts = line.rstrip("\n").split(",")
    if len(parts) not in (3, 4) or parts[0] == "step":
        return None
    try:
        return int(parts[0]), parts[1], float(parts[2]), int(parts[3]) if len(parts) == 4 else None
    except ValueError:
        return None


def now_ms() -> int:
    return int(time.time() * 1000)


class MetricRecord:
    """Append-only ``metrics.csv`` with the exactly-once rules above. Thread-safe for one writer and readers."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._last_step = -1
        self._keys_at_last_step: set[str] = set()
        self._timed = True
        self._scan()

    def _scan(self) -> None:
        """Learn the last step (and its keys) already in the file, and whether it has the time column."""
        if not self.path.exists():
            return
        with open(self.path) as f:
            first = f.readline()
            self._timed = first != UNTIMED_HEADER
            f.seek(0)
            for line in f:
                row = parse_line(line) if line.endswith("\n") else None
                if row is None:
                    continue
                step, key, _, _ = row
                if step > self._last_step:
                    self._last_step, self._keys_at_last_step = step, set()
                self._keys_at_last_step.add(key)

    def truncate_after(self, step: int) -> int:
        """Drop every row with a step above ``step`` (and a torn last line); returns the rows dropped.

        Atomic: the kept rows are written to a new file that replaces the old one.
        """
        if not self.path.exists():
            return 0
        kept, dropped = [HEADER if self._timed else UNTIMED_HEADER], 0
        with self._lock:
            with open(self.path) as f:
                for line in f:
                    row = parse_line(line) if line.endswith("\n") else None
                    if row is None:
                        dropped += line not in HEADERS
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

    def append(self, step: int, metrics: dict[str, float], time_ms: int | None = None) -> dict[str, float]:
        """Write the (step, key) pairs not yet recorded, logged at ``time_ms`` (default now); returns what was
        written."""
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
            if fresh:
                self._timed = True
            stamp = f",{time_ms if time_ms is not None else now_ms()}" if self._timed else ""
            with open(self.path, "a") as f:
                if fresh:
                    f.write(HEADER)
                f.write("".join(f"{step},{key},{value!r}{stamp}\n" for key, value in new.items()))
                f.flush()  # in the kernel's hands now: a SIGKILL of this process cannot lose it
            self._keys_at_last_step.update(new)
            return new


def read_rows(path: Path, offset: int) -> list[Row]:
    """Complete data rows from byte ``offset`` on."""
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
            step, key, value, time_ms = row
            out.append(Row(step, key, value, pos, time_ms))
    return out
