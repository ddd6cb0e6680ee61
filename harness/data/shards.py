"""Shard files of a feature cache: examples streamed into zip archives of ``.npy`` members, read lazily.

A shard ``shards/00042.npz`` holds members ``{entry_id}/{array}.npy``: ``numpy.load`` opens it as an
``NpzFile`` that reads one member at a time, so a reader never loads more than the example it asks for, and
the writer appends one example at a time, so memory does not grow with the shard. Every file of a cache is
written under a temporary name and renamed into place (``atomic_write_*``): a killed writer leaves a
``*.tmp-*`` file, never a truncated shard.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def tmp_name(path: Path) -> Path:
    """A sibling name unique to this host and process, recognisable as temporary (``.name.tmp-host-pid``)."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = tmp_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_json(path: Path, value) -> None:
    atomic_write_text(path, json.dumps(value, indent=1))


@contextmanager
def file_lock(path: Path, *, blocking: bool = True):
    """An exclusive ``flock`` on ``path`` (created if missing); yields False when ``blocking=False`` and
    another process holds it. The lock dies with its process, so a killed holder never leaves it stuck."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class ShardWriter:
    """Appends examples to ``path`` (via a temporary file); ``commit()`` renames it into place."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = tmp_name(path)
        self._zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)

    def add(self, entry_id: str, arrays: dict[str, np.ndarray]) -> None:
        for key, value in arrays.items():
            with self._zip.open(f"{entry_id}/{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(value), allow_pickle=False)

    def commit(self) -> None:
        self._zip.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._zip.close()
        self.tmp.unlink(missing_ok=True)


class ShardReader:
    """Opens shards on first use and keeps up to ``max_open`` of them open, per process.

    Handles are dropped after a fork (DataLoader workers): two processes reading through one inherited file
    offset would corrupt each other's reads.
    """

    def __init__(self, folder: Path, max_open: int = 32):
        self.folder = Path(folder)
        self.max_open = max_open
        self._open: OrderedDict[int, tuple[np.lib.npyio.NpzFile, dict[str, list[str]]]] = OrderedDict()
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "max_open": self.max_open}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["folder"], state["max_open"])

    def _shard(self, shard: int):
        if self._pid != os.getpid():
            self._open, self._pid = OrderedDict(), os.getpid()
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        npz = np.load(self.folder / f"{shard:05d}.npz", allow_pickle=False)
        members: dict[str, list[str]] = {}
        for name in npz.files:
            entry, key = name.split("/", 1)
            members.setdefault(entry, []).append(key)
        self._open[shard] = (npz, members)
        if len(self._open) > self.max_open:
            self._open.popitem(last=False)[1][0].close()
        return self._open[shard]

    def load(self, shard: int, entry_id: str) -> dict[str, np.ndarray]:
        npz, members = self._shard(shard)
        if entry_id not in members:
            raise KeyError(f"entry {entry_id!r} is not in shard {shard:05d} of {self.folder}")
        return {key: npz[f"{entry_id}/{key}"] for key in members[entry_id]}
