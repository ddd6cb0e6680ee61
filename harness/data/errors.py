"""Typed errors of the data pipeline. Each names the file or record at fault and what was expected.

Preparation never lets these escape for a single bad structure: it records them as rejects (``cache.py``).
A wrong path or a bad configuration, by contrast, stops the command with one clear line.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError


class DataError(HarnessError):
    """Base of every error raised by ``harness.data``."""


class DataPathError(DataError):
    """A path given by the user does not exist or is not what was expected (file/folder, cache)."""

    def __init__(self, path: str | Path, expected: str):
        self.path = Path(path)
        self.expected = expected
        super().__init__(f"{path}: {expected}")


class RecordError(DataError):
    """One input record (structure file, MSA) cannot be used; ``kind`` is a short machine-readable tag."""

    kind = "record"

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StructureParseError(RecordError):
    """A structure file is empty, truncated, not a structure, or has no resolved polymer/ligand atoms."""

    kind = "parse"


class UnknownCCDError(RecordError):
    """A residue or ligand code is not in the Chemical Component Dictionary: no reference conformer."""

    kind = "unknown_ccd"


class EmptyChainError(RecordError):
    """A chain has no resolved atoms at all."""

    kind = "empty_chain"


class MSAError(RecordError):
    """An MSA file cannot be read, or its query does not match the chain sequence it was given for."""

    kind = "msa"


class PLDDTFilterError(RecordError):
    """A predicted structure has no residue whose pLDDT passes the configured threshold."""

    kind = "plddt"
