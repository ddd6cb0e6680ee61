"""One process at a time copies a run folder into MLflow: its live trainer, or ``harness tracking sync``.

Two copiers would race on the folder's upload cursor (``tracking.json``) and ``state.json`` and could send rows
twice. So the trainer (rank 0) holds an exclusive lock on ``<run>/trainer.lock`` for its whole session (its own
uploader sends the folder's rows), and ``harness tracking sync`` takes the same lock without waiting: a folder
whose trainer is alive is refused, by name, with who holds it. A trainer that starts while a sync holds the lock
waits for it (a sync takes seconds). The lock is the kernel's (``flock``, also over NFS v4): a killed process
holds nothing, so no stale lock survives a crash or a requeue.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import HarnessError
from harness.tracking import names
from harness.tracking.run_folder import RunFolder


class FolderBusy(HarnessError):
    """Another live process (a trainer, or a sync) holds the run folder."""


@contextmanager
def folder_lock(folder: RunFolder, *, owner: str, wait: bool) -> Iterator[None]:
    """Hold ``folder``'s lock as ``owner`` (written into the lock file, for the refusal's message). Without
    ``wait`` a held lock raises FolderBusy at once; with it, this waits (saying so on stderr)."""
    folder.path.mkdir(parents=True, exist_ok=True)
    path = folder.path / names.RUN_LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise FolderBusy(f"{folder.path}: in use by {holder}; a live trainer uploads its own rows to "
                                 "MLflow: sync the folder after it ends") from None
            print(f"{folder.path}: waiting for {holder} to release the run folder", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"owner": owner, "pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.time()}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"{info['owner']} (pid {info['pid']} on {info['host']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
