"""Training: the Lightning module around SeedFold, its callbacks, and ``train_run`` that ties them to a run
folder and an MLflow run (resumable, same MLflow run after a crash or preemption)."""
