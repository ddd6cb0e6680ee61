"""Names of everything a run records, in MLflow and in its run folder. One source of truth for the trainer
(writer, which reads them as ``harness.tracking.names``) and ``analysis`` (reader, through
``analysis.collect.RecordNames`` whose defaults are these): rename here, nowhere else. What a run must record is
listed in docs/DESIGN.md §4.

It lives in ``analysis`` because ``analysis`` never imports ``harness`` while ``harness`` may import ``analysis``.
"""

# train.* settings (recorded as params) that decide when a run validates, logs or keeps checkpoints, and how long
# it is: they do not change its trajectory (a branch may differ from its parent in them, harness.train.branch) nor
# its recipe (analysis.study compares runs that differ in them).
BOOKKEEPING_SETTINGS = ("max_steps", "milestone_steps", "milestone_every", "checkpoint_every", "keep_checkpoints",
                        "log_every", "val_every", "val_log_points", "val_at_start", "val_lddt_every",
                        "val_train_probe")

# Per-step metrics (MLflow metric keys; also columns of <run_dir>/metrics.csv).
LOSS = "train/loss"
LOSS_TERMS = ("train/loss_mse", "train/loss_bond", "train/loss_smooth_lddt", "train/loss_distogram",
              "train/loss_plddt", "train/loss_pae", "train/loss_pde", "train/loss_resolved")
LR = "train/lr"
GRAD_NORM = "train/grad_norm"
SKIPPED_STEPS = "guard/skipped_steps"  # cumulative count of non-finite steps skipped
ROLLBACKS = "guard/rollbacks"  # cumulative count of rollbacks to the last good checkpoint
EXAMPLES_PER_S = "throughput/examples_per_s"
ITER_PER_S = "throughput/iter_per_s"
PEAK_MEMORY_MB = "memory/peak_mb"  # CUDA max allocated, or process peak RSS on CPU
FLOPS_PER_STEP = "flops/per_step"  # analytic, from the real cropped sizes seen (forward + backward)
FLOPS_CUMULATIVE = "flops/cumulative"
DEVICE_S_PER_STEP = "time/device_s_per_step"  # measured training cost of the step (harness/train/clock.py)
DEVICE_S_CUMULATIVE = "time/device_s"  # summed over the run's steps (validation excluded)
EXAMPLES_SEEN = "data/examples_seen"
TOKEN_PAIRS_SEEN = "data/token_pairs_seen"  # sum of n_tokens^2
VAL_LDDT = "val/lddt"  # mean all-atom lDDT of sampled structures (fixed seeds) on the fixed validation set
VAL_LOSS = "val/loss"  # deterministic estimator: training-loss weighting, diffusion terms by quadrature over sigma
VAL_LOSS_DIFFUSION = "val/loss_diffusion"  # quadrature-weighted diffusion loss (mse + smooth lDDT [+ bond])
VAL_LOSS_DIFFUSION_AT_SIGMA = "val/loss_diffusion_sigma_{i:02d}"  # per node i of the sigma grid (format string)
VAL_DISTOGRAM_CE = "val/distogram_ce"
VAL_SMOOTH_LDDT = "val/smooth_lddt"  # smooth lDDT (a score in [0, 1]), quadrature-weighted over the sigma grid
VAL_LOSS_BOND = "val/loss_bond"  # the bond term of VAL_LOSS_DIFFUSION before α_bond (σ-weighted, quadrature)
# Top-L/5 contact precision from the distogram (CASP: Cβ < 8 Å), sequence separation >= 24 and >= 12; no sampler.
VAL_CONTACT_PRECISION = "val/contact_precision"
VAL_CONTACT_PRECISION_SEP12 = "val/contact_precision_sep12"
# Its uncertainty: standard error over the validation structures (it has no draw noise).
VAL_CONTACT_PRECISION_NOISE = "val/contact_precision_noise"
VAL_CONTACT_PRECISION_SEP12_NOISE = "val/contact_precision_sep12_noise"
# The estimator's own noise: std of the metric at one checkpoint over independent noise draws (absolute units).
VAL_LOSS_NOISE = "val/loss_noise"
VAL_LDDT_NOISE = "val/lddt_noise"
VAL_LOSS_DIFFUSION_NOISE = "val/loss_diffusion_noise"
VAL_SMOOTH_LDDT_NOISE = "val/smooth_lddt_noise"
# The same estimator on fixed crops of training structures (step 0 and the end): VAL_* - TRAIN_PROBE_* is the
# generalisation gap. Every VAL_LOSS* / VAL_SMOOTH_LDDT* / VAL_DISTOGRAM_CE key has its train_probe/ twin.
TRAIN_PROBE_PREFIX = "train_probe/"
TRAIN_PROBE_LOSS = "train_probe/loss"
TRAIN_PROBE_LOSS_NOISE = "train_probe/loss_noise"
# What a trivial prediction scores on the same validation set (logged once, at step 0).
BASELINE_LDDT_GEOMETRIC = "baseline/lddt_geometric"

# Tags (strings) on every training run.
TAG_SWEEP = "sweep"  # sweep name, when the run belongs to one
TAG_RUN_KEY = "run_key"  # the stable id hashed from the resolved config
TAG_CONFIG_HASH = "config_hash"
TAG_PRESET = "preset"
TAG_ATTENTION = "attention"
TAG_GIT_COMMIT = "git_commit"
TAG_STATUS = "harness_status"  # running | finished | failed
TAG_KIND = "kind"  # train | tune_trial | tune_study | report
TAG_PROFILE = "profile"  # the sweep profile that made the run (a report refuses to mix profiles)
# A study's runs (harness/sweep/study.py): which configuration, which budgets its schedule ends at, its role.
TAG_STUDY_CONFIG = "study_config"  # the configuration (run name and grid point, without lr, steps or seed)
TAG_STUDY_BUDGETS = "study_budgets"  # "flops:2e+11;steps:400": the budgets this run completes
TAG_STUDY_ROLE = "study_role"  # trunk | branch | scan
TAG_STUDY_LR = "study_lr"  # scan: chosen by the configuration's scan; config: the run's own train.lr
TAG_GUARD_RESCUED = "guard_rescued"  # "true" once the stability guard skipped a step or rolled back, else "false"

# Params (besides the flattened resolved config, logged as params with dotted keys like model.c_z).
PARAM_PARAMS_TOTAL = "params_total"
PARAM_PARAMS_NON_EMBEDDING = "params_non_embedding"
PARAM_PARAMS_PAIR_TRACK = "params_pair_track"
PARAM_FLOPS_PER_EXAMPLE = "flops_per_example"  # analytic forward FLOPs at the configured crop size
# What data the run saw (the report states them).
PARAM_TRAIN_STRUCTURES = "data_train_structures"
PARAM_TRAIN_TOKENS = "data_train_tokens"
PARAM_VAL_STRUCTURES = "data_val_structures"
PARAM_VAL_TOKENS = "data_val_tokens"
PARAM_VAL_SIGMAS = "val_sigma_grid"  # JSON list of the sigma nodes (Å) behind VAL_LOSS_DIFFUSION_AT_SIGMA
# What ran underneath (models/kernels/self_check.py, harness/allocator.py).
PARAM_KERNEL_TRIANGLE_ATTENTION = "kernel_triangle_attention"  # triton | torch | ...
PARAM_KERNEL_SELF_CHECK = "kernel_self_check"  # "passed: max error …" | "failed: …" | "not run: …"
PARAM_CPU_MALLOC = "cpu_malloc"  # tuned | env | off | unsupported
PARAM_DEVICE = "device"  # what trained the run: "cuda: NVIDIA H100 ... x 8" or "cpu: <model>, 1 thread(s) x 1 ..."
PARAM_TIME_BASIS = "time_basis"  # what DEVICE_S_* count (GPU wall seconds, or CPU seconds)

# Files in a run folder (<runs_dir>/<sweep>/<run_key>/ or <runs_dir>/<name>-<hash>/).
RUN_CONFIG_FILE = "config.yaml"  # the resolved RunConfig
RUN_STATE_FILE = "state.json"  # {"status", "step", "mlflow_run_id", "experiment_id", "last_metrics", ...}
RUN_METRICS_FILE = "metrics.csv"  # long format: step, key, value, time_ms (harness.tracking.record)
RUN_LOCK_FILE = "trainer.lock"  # held by the live trainer or `harness tracking sync` (harness.tracking.trainer_lock)
# Each validation's values per structure: long format step, key, value with key "<metric>@<entry id>".
RUN_STRUCTURE_METRICS_FILE = "val_structures.csv"
STRUCTURE_KEY_SEPARATOR = "@"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
