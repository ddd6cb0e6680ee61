from tests.slurm.cluster import slurm_cluster, submitit_folder  # noqa: F401  (fixtures)
