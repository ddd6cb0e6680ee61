"""What to fold, as users write it: AlphaFold3 input JSON, FASTA, or a structure file.

``read_fold_jobs(path)`` turns an AF3 JSON (one job or a list of jobs) or a FASTA file into :class:`FoldJob`
objects; ``assemble(job)`` turns a job into the same ``Structure`` that ``harness data`` parses from mmCIF, with
no resolved atoms (the model only ever sees CCD or RDKit reference conformers), plus its per-chain MSAs. From
there ``harness predict`` tokenises and featurises exactly as for training.
"""

from harness.inputs.assemble import AssembledJob, assemble
from harness.inputs.job import Entity, FoldInputError, FoldJob
from harness.inputs.read import read_fold_jobs

__all__ = ["AssembledJob", "Entity", "FoldInputError", "FoldJob", "assemble", "read_fold_jobs"]
