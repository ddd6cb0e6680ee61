"""``harness data msa``: MSAs for users without any, by an MMseqs2 search against a sequence database they give.

Writes the alignment store that preparation reads (``msa.msa_files_for``): one ``{sequence_key}.a3m`` per
unique protein chain sequence, so identical chains of any entry share one file. The database is a FASTA file
(UniRef/UniProt-style headers keep their ``OX=`` taxonomy ids, which MSA pairing uses).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.data.clusters import one_letter
from harness.data.constants import PROTEIN
from harness.data.errors import DataPathError, RecordError
from harness.data.msa import sequence_key
from harness.data.parse import is_structure_file, read_structure


def protein_sequences(src: Path) -> tuple[dict[str, str], list[dict]]:
    """Unique protein chain sequences of every structure under ``src``: ``{sequence_key: sequence}``, plus one
    reject per unreadable file (recorded, never fatal)."""
    sequences, rejects = {}, []
    for path in sorted(p for p in src.rglob("*") if is_structure_file(p)):
        try:
            structure = read_structure(path)
        except RecordError as exc:
            rejects.append({"path": exc.path, "kind": exc.kind, "reason": exc.reason})
            continue
        for chain in structure.chains:
            if chain.mol_type == PROTEIN:
                seq = one_letter("-".join(chain.sequence))
                sequences[sequence_key(seq)] = seq
    return sequences, rejects


def _mmseqs(*args: str) -> None:
    done = subprocess.run(["mmseqs", *args, "-v", "1"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"mmseqs {args[0]} failed ({done.returncode}): {done.stderr[-800:]}")


def _full_headers(db_fasta: Path, accessions: set[str]) -> dict[str, str]:
    """accession -> full FASTA header for the hits only (``result2msa`` keeps just the accession, but pairing
    needs the ``OX=`` taxonomy id); one streaming pass, memory in the number of hits."""
    out = {}
    with open(db_fasta) as fh:
        for line in fh:
            if line.startswith(">"):
                header = line[1:].rstrip("\n")
                accession = header.split()[0] if header.split() else ""
                parts = accession.split("|")
                if len(parts) >= 3 and parts[0] in ("sp", "tr"):  # mmseqs keys UniProt headers by accession
                    accession = parts[1]
                if accession in accessions:
                    out[accession] = header
    return out


def search_msas(sequences: dict[str, str], db_fasta: Path, out_dir: Path, *, sensitivity: float = 7.5,
                max_seqs: int = 1000, threads: int = 1) -> list[Path]:
    """Search each sequence against ``db_fasta`` (``mmseqs search`` + ``result2msa``) and write
    ``out_dir/{key}.a3m``; existing files are kept (a rerun only searches what is missing).

    Raises:
        DataPathError: no ``mmseqs`` on PATH (``bash scripts/install_data_tools.sh``) or no database file.
    """
    if shutil.which("mmseqs") is None:
        raise DataPathError("mmseqs", "MMseqs2 is not installed; run `bash scripts/install_data_tools.sh`")
    if not Path(db_fasta).is_file():
        raise DataPathError(db_fasta, "expected a FASTA file of database sequences")
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = {k: s for k, s in sequences.items() if not (out_dir / f"{k}.a3m").is_file()}
    if todo:
        with tempfile.TemporaryDirectory(prefix="harness-msa-") as tmp:
            t = Path(tmp)
            (t / "q.fasta").write_text("".join(f">{k}\n{s}\n" for k, s in todo.items()))
            _mmseqs("createdb", str(t / "q.fasta"), str(t / "q"))
            _mmseqs("createdb", str(db_fasta), str(t / "db"))
            _mmseqs("search", str(t / "q"), str(t / "db"), str(t / "res"), str(t / "work"), "-s", str(sensitivity),
                    "--max-seqs", str(max_seqs), "--threads", str(threads))
            _mmseqs("result2msa", str(t / "q"), str(t / "db"), str(t / "res"), str(t / "msa"),
                    "--msa-format-mode", "5", "--threads", str(threads))
            shutil.copy(t / "q.lookup", t / "msa.lookup")  # the MSA db has the query db's keys
            _mmseqs("unpackdb", str(t / "msa"), str(t / "unpacked"), "--unpack-name-mode", "1",
                    "--unpack-suffix", ".a3m")
            texts = {p.name.removesuffix(".a3m"): p.read_text().replace("\x00", "")
                     for p in (t / "unpacked").iterdir()}
            full = _full_headers(db_fasta, {line[1:].split()[0] for text in texts.values()
                                            for line in text.splitlines() if line.startswith(">")})
            for key, text in texts.items():
                lines = [f">{full.get(line[1:].split()[0], line[1:])}" if line.startswith(">") else line
                         for line in text.splitlines()]
                tmp_out = out_dir / f".{key}.a3m.tmp"
                tmp_out.write_text("\n".join(lines) + "\n")
                tmp_out.replace(out_dir / f"{key}.a3m")
    return [out_dir / f"{k}.a3m" for k in sequences if (out_dir / f"{k}.a3m").is_file()]
