"""SLURM resources of a job, as written in a profile (``slurm/profiles/*.yaml``) or a sweep's
``executor.slurm``.

Field names are SLURM's (``sbatch`` option in brackets); ``to_submitit`` maps them onto submitit's parameters.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SlurmResources(BaseModel):
    """What one job of a sweep asks SLURM for. Every job of an array gets the same resources."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(None, description="[--partition]; None = the cluster's default")
    account: str | None = Field(None, description="[--account]")
    qos: str | None = Field(None, description="[--qos]")
    nodes: int = Field(1, ge=1, description="[--nodes]")
    tasks_per_node: int = Field(1, ge=1, description="[--ntasks-per-node]; one task per GPU for DDP")
    gpus_per_node: int = Field(0, ge=0, description="[--gpus-per-node]")
    gpu_memory_gb: float | None = Field(
        None, gt=0, description="memory of one GPU, GB (not an sbatch option): runs whose traced training step "
        "needs more than 90 % of it are refused at submission")
    cpus_per_task: int = Field(1, ge=1, description="[--cpus-per-task]")
    mem_gb: float | None = Field(None, gt=0, description="[--mem] per node, GB; None = DefMemPerCPU x cpus")
    time_min: int = Field(60, ge=1, description="[--time] limit in minutes; a job hitting it is requeued")
    constraint: str | None = Field(None, description="[--constraint], e.g. 'h100|a100'")
    array_parallelism: int = Field(64, ge=1, description="[--array=...%N] jobs of the sweep running at once")
    max_requeues: int = Field(3, ge=0, description="requeues on time limit/preemption before the job fails")
    signal_delay_s: int = Field(90, ge=10, description="seconds before the time limit the job is warned")
    setup: list[str] = Field(default_factory=list, description="shell lines run before the job (module load)")
    extra_sbatch: dict[str, str | int | bool] = Field(
        default_factory=dict, description="more sbatch options, e.g. {exclusive: true, reservation: x}")

    def to_submitit(self) -> dict[str, Any]:
        """Parameters for ``submitit.AutoExecutor.update_parameters`` (cluster 'slurm')."""
        params: dict[str, Any] = {
            "nodes": self.nodes,
            "tasks_per_node": self.tasks_per_node,
            "cpus_per_task": self.cpus_per_task,
            "timeout_min": self.time_min,
            "slurm_array_parallelism": self.array_parallelism,
            "slurm_signal_delay_s": self.signal_delay_s,
        }
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        optional = {"slurm_partition": self.partition, "slurm_account": self.account,
                    "slurm_qos": self.qos, "slurm_constraint": self.constraint}
        params |= {k: v for k, v in optional.items() if v is not None}
        if self.setup:
            params["slurm_setup"] = list(self.setup)
        if self.extra_sbatch:
            params["slurm_additional_parameters"] = dict(self.extra_sbatch)
        return params

    def describe(self) -> str:
        """One line for tables: ``slurm gpu:8x1 node, partition x, 1440 min``."""
        where = f"partition {self.partition}" if self.partition else "default partition"
        gpus = f"{self.gpus_per_node} GPU/node" if self.gpus_per_node else f"{self.cpus_per_task} CPU"
        return f"slurm {self.nodes} node x {gpus}, {where}, {self.time_min} min"
